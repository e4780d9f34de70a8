"""Events sent to Sentry carry no tokens, keys or passwords."""

from duoniche.sentry import scrub_event, scrub_text


def test_secrets_are_scrubbed_from_text():
    text = (
        "GET https://api.telegram.org/bot123456:ABC-def_ghi/sendVoice?token=abc&x=1 "
        "Authorization: Bearer sk-live-0123456789 key sk-abcdefghijkl"
    )

    scrubbed = scrub_text(text)

    assert "ABC-def_ghi" not in scrubbed
    assert "token=[Filtered]" in scrubbed
    assert "0123456789" not in scrubbed
    assert "abcdefghijkl" not in scrubbed
    assert "sendVoice" in scrubbed


def test_sensitive_headers_are_dropped_from_events():
    event = {
        "request": {"headers": {"Authorization": "Bearer t0k3n", "X-Api-Key": "k", "Host": "h"}},
        "message": "password=hunter2 failed",
    }

    scrubbed = scrub_event(event, {})

    assert scrubbed["request"]["headers"] == {
        "Authorization": "[Filtered]",
        "X-Api-Key": "[Filtered]",
        "Host": "h",
    }
    assert scrubbed["message"] == "password=[Filtered] failed"
