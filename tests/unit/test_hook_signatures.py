"""X-Hub-Signature-256, with GitHub's own published test vector."""

from hook.signatures import sign, signature_problem

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_SECRET = b"It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_test_vector():
    assert sign(GITHUB_SECRET, GITHUB_PAYLOAD) == GITHUB_SIGNATURE
    assert signature_problem(GITHUB_SIGNATURE, GITHUB_PAYLOAD, [GITHUB_SECRET]) is None


def test_wrong_secret():
    assert "does not match" in signature_problem(GITHUB_SIGNATURE, GITHUB_PAYLOAD, [b"another secret!!!!"])


def test_changed_body():
    assert "does not match" in signature_problem(GITHUB_SIGNATURE, GITHUB_PAYLOAD + b" ", [GITHUB_SECRET])


def test_missing_prefix():
    bare = GITHUB_SIGNATURE.removeprefix("sha256=")
    assert "sha256=" in signature_problem(bare, GITHUB_PAYLOAD, [GITHUB_SECRET])


def test_sha1_header_style_is_refused():
    assert signature_problem("sha1=" + "0" * 40, GITHUB_PAYLOAD, [GITHUB_SECRET]) is not None


def test_missing_header():
    assert "missing" in signature_problem(None, GITHUB_PAYLOAD, [GITHUB_SECRET])
    assert "missing" in signature_problem("", GITHUB_PAYLOAD, [GITHUB_SECRET])


def test_either_of_two_secrets_during_rotation():
    old, new = b"the old secret, rotating out", GITHUB_SECRET
    assert signature_problem(GITHUB_SIGNATURE, GITHUB_PAYLOAD, [old, new]) is None
    assert signature_problem(sign(old, GITHUB_PAYLOAD), GITHUB_PAYLOAD, [old, new]) is None
    assert signature_problem(sign(b"neither of the two secrets", GITHUB_PAYLOAD), GITHUB_PAYLOAD, [old, new])
