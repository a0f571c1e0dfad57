"""The door on a phone: door staff type a code, or hold a ticket's QR code to the camera
(a fake camera playing a video of the QR code), and see the verdict fill the screen.
A door member reaches only check-in in the admin area."""
from __future__ import annotations

import segno
from playwright.sync_api import Page, expect

from e2e.conftest import chromium_path
from e2e.helpers import log_in, readme_shot
from tests.support import buy, door_member

PHONE = {"width": 390, "height": 844}


def _door_event(session, factory, tickets: int = 2):
    event = factory.ga_event(capacity=10, title="Pier Sessions")
    staff = factory.user(name="Dora Door")
    door_member(session, event, staff)
    codes = [buy(session, event, factory.user(name=f"Guest {i}")).tickets[0].code for i in range(tickets)]
    return event, staff, codes


def test_door_staff_check_a_ticket_in_by_typing_on_a_phone(page: Page, session, factory, shot):
    event, staff, codes = _door_event(session, factory)
    page.set_viewport_size(PHONE)
    log_in(page, staff.email)
    page.goto("/door")
    page.get_by_role("link", name="Pier Sessions").click()
    expect(page.get_by_text("0 of 2 checked in")).to_be_visible()

    page.get_by_label("Ticket code").fill(codes[0])
    page.get_by_role("button", name="Check in").click()
    verdict = page.get_by_role("alert")
    expect(verdict).to_contain_text("ADMIT")
    expect(verdict).to_contain_text("Guest 0")
    shot("door-admit")
    readme_shot(page, "door-admit")
    verdict.click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_text("1 of 2 checked in")).to_be_visible()

    page.get_by_label("Ticket code").fill(codes[0])
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("ALREADY IN")
    expect(page.get_by_role("alert")).to_contain_text("by Dora Door")
    shot("door-already")
    readme_shot(page, "door-already")


def test_a_door_member_reaches_only_check_in_in_the_admin_area(page: Page, session, factory):
    event, staff, _ = _door_event(session, factory, tickets=0)
    other = factory.ga_event(capacity=5, title="Not Theirs")
    log_in(page, staff.email)
    for path in (f"/admin/events/{event.id}", f"/admin/orders?event={event.id}", "/admin/audit",
                 "/admin/box-office"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    response = page.goto(f"/admin/events/{other.id}/check-in")
    assert response is not None and response.status == 404
    response = page.goto(f"/admin/events/{event.id}/check-in")
    assert response is not None and response.status == 200


def _qr_video(path, code: str, width: int = 640, height: int = 480, frames: int = 10) -> None:
    """A short YUV4MPEG2 clip of the code's QR on white, for Chromium's fake camera."""
    rows = [tuple(row) for row in segno.make_qr(code, error="m").matrix_iter(scale=1, border=4)]
    scale = min(width, height) * 3 // 4 // len(rows)
    size = scale * len(rows)
    left, top = (width - size) // 2, (height - size) // 2
    luma = bytearray(b"\xeb" * (width * height))  # video white
    for y, row in enumerate(rows):
        line = bytes(0x10 if dark else 0xEB for dark in row for _ in range(scale))
        for dy in range(scale):
            start = (top + y * scale + dy) * width + left
            luma[start:start + size] = line
    chroma = b"\x80" * (width // 2 * height // 2)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)


def test_the_camera_reads_a_tickets_qr_code(browser_type, base_url, session, factory, tmp_path):
    event, staff, codes = _door_event(session, factory, tickets=1)
    clip = tmp_path / "qr.y4m"
    _qr_video(clip, codes[0])
    browser = browser_type.launch(executable_path=chromium_path(), args=[
        "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"])
    try:
        context = browser.new_context(base_url=base_url, viewport=PHONE, permissions=["camera"])
        page = context.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(page, staff.email)
        page.goto(f"/door/events/{event.id}")
        page.get_by_role("button", name="Scan with the camera").click()
        expect(page.get_by_text("Point the camera at the ticket's QR code.")).to_be_visible()
        verdict = page.get_by_role("alert")
        expect(verdict).to_contain_text("ADMIT", timeout=15_000)
        expect(page.get_by_text("1 of 1 checked in")).to_be_visible()
        # The same ticket still in front of the camera is not scanned again while the verdict shows.
        page.wait_for_timeout(1000)
        expect(verdict).to_contain_text("ADMIT")
        assert not violations, violations
    finally:
        browser.close()
