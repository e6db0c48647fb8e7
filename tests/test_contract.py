"""recsel.spec.contract: a hand-written spec's mistake is named with what to change."""

import pytest

from recsel.spec import contract


def _spec(**feature) -> dict:
    return {"version": 1, "label": "y", "features": [{"name": "c", "embedding_dim": 8, **feature}]}


@pytest.mark.parametrize(
    "feature, message",
    [
        # Each was "... is not valid under any of the given schemas" (the oneOf over kinds).
        ({"kind": "numerical"},
         r"features/0/kind \('c'\): 'numerical' is not one of \['categorical'"),
        ({"kind": "categorical"},
         r"features/0 \('c'\): needs one of: 'vocabulary' \(or 'vocabulary_file'\), "
         r"'hash_buckets'"),
        ({"kind": "numeric", "vocabulary": ["a"]},
         r"features/0 \('c'\): takes none of: 'vocabulary', 'vocabulary_file', 'hash_buckets'"),
        ({"kind": "categorical", "vocabulary": ["a"], "hash_buckets": 4},
         r"features/0 \('c'\): give only one of: 'vocabulary'"),
        ({"kind": "numeric", "embedding_size": 8},
         r"features/0 \('c'\): Additional properties are not allowed \('embedding_size'"),
    ],
)  # fmt: skip
def test_spec_errors_name_the_feature_and_the_fix(feature, message):
    with pytest.raises(ValueError, match=r"^spec.json: invalid at " + message):
        contract.validate(_spec(**feature), "feature_spec.schema.json", "spec.json")


def test_a_valid_spec_and_top_level_errors():
    contract.validate(_spec(kind="numeric"), "feature_spec.schema.json", "spec.json")
    with pytest.raises(ValueError, match=r"invalid at \(top level\): 'version' is a required"):
        contract.validate({"features": []}, "feature_spec.schema.json", "spec.json")
