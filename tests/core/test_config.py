"""The masker: a secret value and its common encodings become `***`, wherever they sit."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from dagflow.core.config import MASK, RunConfig, masker_for, secret_parameter_values

SECRET = "s3cr3t-P@ss/word+x ü"


def test_the_value_and_its_encodings_are_masked() -> None:
    mask = masker_for([SECRET])
    assert mask is not None
    raw = SECRET.encode()
    for shown in (
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET),
        repr(SECRET),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ):
        text = f"before {shown} after"
        out = mask(text)
        assert out.startswith("before ") and out.endswith(" after"), out
        assert MASK in out
        assert SECRET not in out and shown.strip('"') not in out


@given(prefix=st.binary(max_size=7), suffix=st.binary(max_size=7))
def test_base64_of_text_holding_the_value_is_masked_at_any_alignment(
    prefix: bytes, suffix: bytes
) -> None:
    mask = masker_for([SECRET])
    assert mask is not None
    encoded = base64.b64encode(prefix + SECRET.encode() + suffix).decode()
    out = mask(encoded)
    assert MASK in out
    # what is left cannot be decoded back to the value
    core = base64.b64encode(SECRET.encode()).decode()[2:-4]
    assert core not in out


def test_short_values_and_no_secrets_mask_nothing() -> None:
    assert masker_for([]) is None
    assert masker_for(["abc"]) is None  # too short to mask without hiding ordinary words
    mask = masker_for(["abcd", "longer-one"])
    assert mask is not None
    assert mask("abcd and longer-one") == "*** and ***"
    assert mask("") == ""


def test_secret_parameters_are_found_and_masked() -> None:
    from pydantic import SecretStr

    params = {"pw": SecretStr("hunter2-pass"), "nested": {"k": [SecretStr("other-pass")]}, "n": 1}
    found = secret_parameter_values(params)
    assert sorted(found) == ["hunter2-pass", "other-pass"]
    config = RunConfig().with_masked(found)
    assert config.masker is not None
    assert config.masker("login hunter2-pass / other-pass") == "login *** / ***"
