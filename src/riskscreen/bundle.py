"""Old path of `riskscreen.model.bundle`, kept for registered models only.

Registered versions are MLflow "models from code": the `pyfunc_model.py` copied into versions
logged before the domain layout (riskscreen 0.1.0) runs `from riskscreen.bundle import ...`.
Nothing in the package imports this module. Remove it in riskscreen 0.3.0, once no served
registry holds a version from 0.1.0.
"""

from riskscreen.model.bundle import ModelBundle, load_bundle

__all__ = ["ModelBundle", "load_bundle"]
