"""Ed25519 receipts: they verify with the public key and fail after any byte changes."""

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.receipts import Receipt, receipt_message, sign_receipt, verify_receipt
from sync.signing import key_id, public_key_pem

# A fixed key so the expected values below are stable across runs.
SERVER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
AGREEMENT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
CONTENT_HASH = "a95d68ab2a578ba746520ae9442c65529499bf47df2a7be691b21232e9e7356c"
RECEIVED_AT = datetime(2025, 3, 14, 10, 45, 0, 123_456, tzinfo=UTC)


def signed():
    return sign_receipt(SERVER_KEY, AGREEMENT_ID, CONTENT_HASH, RECEIVED_AT)


def test_receipt_verifies_with_pem_key_and_dict():
    receipt = signed()
    pem = public_key_pem(SERVER_KEY)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert verify_receipt(pem, receipt)
    assert verify_receipt(pem.encode(), receipt.to_dict())
    assert verify_receipt(SERVER_KEY.public_key(), Receipt.from_dict(receipt.to_dict()))


def test_wire_form_and_signed_message_are_documented_shape():
    receipt = signed()
    assert receipt.to_dict() == {
        "version": "doorstep-receipt-v1",
        "agreement_id": AGREEMENT_ID,
        "content_hash": CONTENT_HASH,
        "received_at": "2025-03-14T10:45:00Z",
        "key_id": key_id(SERVER_KEY.public_key()),
        "signature": receipt.signature,
    }
    assert (
        receipt.message()
        == (
            f"doorstep-receipt-v1\n{receipt.key_id}\n{AGREEMENT_ID}\n{CONTENT_HASH}\n"
            "2025-03-14T10:45:00Z"
        ).encode()
    )
    assert len(receipt.signature) == 86 and "=" not in receipt.signature


def test_received_at_is_truncated_to_the_second_and_kept_in_utc():
    local = RECEIVED_AT.astimezone(timezone(timedelta(hours=8)))
    receipt = sign_receipt(SERVER_KEY, AGREEMENT_ID.upper(), CONTENT_HASH.upper(), local)
    assert receipt.received_at == datetime(2025, 3, 14, 10, 45, tzinfo=UTC)
    assert receipt.agreement_id == AGREEMENT_ID
    assert receipt.content_hash == CONTENT_HASH
    assert Receipt.from_dict(receipt.to_dict()) == receipt


def test_wrong_key_fails():
    assert not verify_receipt(public_key_pem(OTHER_KEY), signed())


def _flip(text: str, index: int) -> str:
    """Change one character to another of the same alphabet."""
    alphabet = "0123456789abcdef" if text[index] in "0123456789abcdef" else "AQgw"
    replacement = next(c for c in alphabet if c != text[index])
    return text[:index] + replacement + text[index + 1 :]


def _every_byte_changed(field: str):
    wire = signed().to_dict()
    for index in range(len(wire[field])):
        changed = dict(wire)
        if wire[field][index] in "-:TZ":
            changed[field] = wire[field][:index] + "x" + wire[field][index + 1 :]
        else:
            changed[field] = _flip(wire[field], index)
        yield changed


@pytest.mark.parametrize("field", ["agreement_id", "content_hash", "received_at", "key_id"])
def test_changing_any_character_of_a_field_fails(field):
    pem = public_key_pem(SERVER_KEY)
    for changed in _every_byte_changed(field):
        assert not verify_receipt(pem, changed), changed[field]


def test_changing_any_character_of_the_signature_fails():
    pem = public_key_pem(SERVER_KEY)
    wire = signed().to_dict()
    signature = wire["signature"]
    for index in range(len(signature)):
        for replacement in "AQgw_-":
            if replacement == signature[index]:
                continue
            changed = dict(wire, signature=signature[:index] + replacement + signature[index + 1 :])
            assert not verify_receipt(pem, changed), (index, replacement)


@pytest.mark.parametrize(
    "changes",
    [
        {"signature": signed().signature + "A"},
        {"signature": signed().signature[:-1]},
        {"signature": signed().signature + "=="},
        {"received_at": "2025-03-14T10:45:00+00:00"},
        {"received_at": "2025-3-14T10:45:00Z"},
        {"agreement_id": AGREEMENT_ID.upper()},
        {"content_hash": CONTENT_HASH.upper()},
        {"version": "doorstep-receipt-v2"},
        {"signature": None},
    ],
)
def test_other_spellings_of_the_same_receipt_fail(changes):
    assert not verify_receipt(public_key_pem(SERVER_KEY), {**signed().to_dict(), **changes})


def test_signature_over_message_bytes_is_plain_ed25519():
    receipt = signed()
    message = receipt_message(receipt.key_id, AGREEMENT_ID, CONTENT_HASH, receipt.received_at)
    raw = base64.urlsafe_b64decode(receipt.signature + "==")
    SERVER_KEY.public_key().verify(raw, message)  # raises if not


@pytest.mark.parametrize("bad_key", ["not a pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n"])
def test_unusable_key_is_an_error_not_a_false(bad_key):
    with pytest.raises(ValueError):
        verify_receipt(bad_key, signed())


@pytest.mark.parametrize(
    ("agreement_id", "content_hash", "received_at"),
    [
        ("nope", CONTENT_HASH, RECEIVED_AT),
        (AGREEMENT_ID, "abc", RECEIVED_AT),
        (AGREEMENT_ID, CONTENT_HASH, datetime(2025, 3, 14, 10, 45)),
    ],
)
def test_signing_refuses_bad_values(agreement_id, content_hash, received_at):
    with pytest.raises(ValueError):
        sign_receipt(SERVER_KEY, agreement_id, content_hash, received_at)
