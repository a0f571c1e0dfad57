"""A history-cache miss: htmx asks again with HX-History-Restore-Request and swaps
the answer in as the whole body, so it must be the full page, not the fragment."""
from __future__ import annotations


def test_a_history_restore_request_gets_the_full_page(client, factory):
    factory.ga_event(title="Jazz night")
    partial = client.get("/?q=jazz", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial and "Jazz night" in partial
    restored = client.get("/?q=jazz", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    body = restored.get_data(as_text=True)
    assert restored.status_code == 200 and "<html" in body and "Jazz night" in body
    assert "HX-Request" in restored.headers["Vary"]


def test_a_history_restore_of_an_event_page_is_the_full_page(client, factory):
    event = factory.ga_event()
    tier = factory.tier(event)
    restored = client.get(f"/events/{event.id}/tickets?qty-{tier.id}=1",
                          headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restored.get_data(as_text=True)
