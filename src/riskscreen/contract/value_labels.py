"""The words a case manager reads for each category value, in Swedish and English.

Kept apart from the field declaration (schema) because it is wording, not contract: a change
here changes no model, no schema hash and no validation, only what the reasons and pages say.
"""

from __future__ import annotations

# What a case manager reads for each category value, (Swedish, English). SSYK groups and the
# sex field are shown as given.
CATEGORY_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "region_of_origin": {
        "middle_east": ("Mellanöstern", "Middle East"),
        "central_asia": ("Centralasien", "Central Asia"),
        "east_africa": ("Östafrika", "East Africa"),
        "other_africa": ("övriga Afrika", "other Africa"),
        "europe_non_eu": ("Europa utanför EU", "Europe outside the EU"),
        "other": ("annan", "other"),
    },
    "permit_type": {
        "quota_refugee": ("kvotflykting", "quota refugee"),
        "asylum": ("asyl", "asylum"),
        "family_reunification": ("anhöriginvandring", "family reunification"),
    },
    "education_level": {
        "none": ("ingen", "none"),
        "primary": ("grundskola, lägre", "primary"),
        "lower_secondary": ("grundskola", "lower secondary"),
        "upper_secondary": ("gymnasium", "upper secondary"),
        "post_secondary_short": ("eftergymnasial, kortare än 3 år", "post-secondary, short"),
        "post_secondary_long": ("eftergymnasial, 3 år eller längre", "post-secondary, long"),
    },
    "literacy": {
        "none": ("kan inte läsa och skriva", "cannot read and write"),
        "limited": ("begränsad", "limited"),
        "literate": ("läser och skriver", "reads and writes"),
    },
    "swedish_level": {
        "none": ("ingen", "none"),
        "sfi_a": ("sfi kurs A", "SFI course A"),
        "sfi_b": ("sfi kurs B", "SFI course B"),
        "sfi_c": ("sfi kurs C", "SFI course C"),
        "sfi_d": ("sfi kurs D", "SFI course D"),
        "sfi_completed": ("sfi avslutad", "SFI completed"),
    },
    "english_level": {
        "none": ("ingen", "none"),
        "basic": ("grundläggande", "basic"),
        "good": ("god", "good"),
    },
    "disability": {
        "none": ("ingen", "none"),
        "physical": ("fysisk", "physical"),
        "sensory": ("sensorisk", "sensory"),
        "cognitive": ("kognitiv", "cognitive"),
        "psychiatric": ("psykisk", "psychiatric"),
    },
    "municipality_type": {
        "metropolitan": ("storstad", "metropolitan"),
        "large_city": ("större stad", "large city"),
        "commuter": ("pendlingskommun", "commuter municipality"),
        "rural": ("landsbygdskommun", "rural municipality"),
    },
}
