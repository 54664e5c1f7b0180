"""The default SPA in a real browser: register, sign in, profile, reload, sign out, admin list,
errors in words, sessions ended elsewhere, an access token refreshed without the user noticing."""

from __future__ import annotations

import re
import uuid

import yaml
from playwright.sync_api import expect

from contract import PASSWORD
from harness.paths import REPO_ROOT
from harness.polling import until

PHONE = {"width": 390, "height": 844}
# How long the browser tier's access tokens live, leeway included (compose/test-browser.yml).
TOKEN_SETTINGS = yaml.safe_load((REPO_ROOT / "compose/test-browser.yml").read_text())["services"]["web"]["environment"]
ACCESS_TOKEN_SECONDS = int(TOKEN_SETTINGS["JWT_ACCESS_TOKEN_EXPIRES"]) + int(TOKEN_SETTINGS["JWT_DECODE_LEEWAY"])


def new_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def register(page, email, password=PASSWORD):
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()


def sign_in(page, email, password=PASSWORD):
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_register_sign_in_reload_sign_out(tab):
    t = tab()
    page = t.open("/register")
    t.screenshot("register")
    email = new_email("flow")
    register(page, email)
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    expect(page.get_by_role("status")).to_contain_text("Welcome")
    t.screenshot("profile")

    page.reload()  # the access token is gone with the page; the refresh cookie restores the session
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    expect(page.get_by_role("status")).to_have_count(0)  # the welcome was shown once

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    t.screenshot("signed-out")

    page.goto(t.stack.https + "/profile")  # a deep link to a private route
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("Please sign in to continue.")).to_be_visible()

    sign_in(page, email)
    expect(page.get_by_test_id("profile-email")).to_have_text(email)


def test_a_wrong_password_is_explained(tab):
    t = tab()
    page = t.open("/register")
    email = new_email("wrong")
    register(page, email)
    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in(page, email, "not the password at all")
    expect(page.get_by_role("alert")).to_have_text("That email and password do not match an account.")
    expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    t.screenshot("wrong-password")


def test_form_errors_are_shown_next_to_the_fields(tab):
    t = tab()
    page = t.open("/register")
    register(page, new_email("short"), "too short")
    expect(page.get_by_role("alert")).to_have_text("Please correct the fields marked below.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_have_text("Use 12 to 1024 characters.")


def make_admin(stack) -> str:
    """A new admin, made by the operator's command; its e-mail (password: PASSWORD)."""
    email = new_email("admin")
    created = stack.compose_run(
        "exec",
        "-T",
        "-e",
        f"ADMIN_PASSWORD={PASSWORD}",
        "web",
        "flask",
        "--app",
        "api",
        "create-admin",
        "--email",
        email,
    )
    assert "created" in created.stdout, created.stdout + created.stderr
    return email


def test_an_admin_sees_the_user_list(tab, stack):
    email = make_admin(stack)
    t = tab()
    page = t.open("/login")
    sign_in(page, email)
    expect(page.get_by_test_id("profile-role")).to_have_text("admin")
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    table = page.get_by_test_id("user-table")
    expect(table.get_by_role("cell", name=email, exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Page 1 of \d+ · \d+ users"))).to_be_visible()
    t.screenshot("admin")
    page.reload()  # a deep link that survives a reload
    expect(page.get_by_test_id("user-table")).to_be_visible()


def test_the_user_list_is_not_for_everyone(tab):
    t = tab()
    page = t.open("/register")
    register(page, new_email("plain"))
    expect(page.get_by_test_id("profile-role")).to_have_text("user")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    page.goto(t.stack.https + "/admin")
    expect(page).to_have_url(re.compile(r"/profile$"))
    expect(page.get_by_role("alert")).to_have_text("The user list is for administrators.")


def test_signing_out_everywhere_ends_the_other_devices_session(tab):
    email = new_email("devices")
    laptop, phone = tab(), tab(viewport=PHONE)
    register(laptop.open("/register"), email)
    # The account exists only once the laptop's registration has answered.
    expect(laptop.page.get_by_test_id("profile-email")).to_have_text(email)
    sign_in(phone.open("/login"), email)
    expect(phone.page.get_by_test_id("profile-email")).to_have_text(email)
    phone.screenshot("profile-phone")

    laptop.page.get_by_role("button", name="Sign out everywhere").click()
    expect(laptop.page.get_by_role("status")).to_have_text("You are signed out on every device.")

    phone.page.reload()
    expect(phone.page).to_have_url(re.compile(r"/login$"))
    expect(phone.page.get_by_role("alert")).to_contain_text("Your session has ended")
    phone.screenshot("session-ended-phone")


def test_an_expired_access_token_is_refreshed_without_the_user_noticing(tab):
    """The browser tier's stack gives access tokens a few seconds: once they are past (the clock is
    what the test waits for), the next action refreshes the token, once, and goes on."""
    t = tab()
    page = t.open("/register")
    register(page, new_email("expiry"))
    expect(page.get_by_test_id("profile-email")).to_be_visible()
    page.wait_for_timeout((ACCESS_TOKEN_SECONDS + 1) * 1000)
    refreshes_before = sum("/api/auth/refresh" in r for r in t.requests)
    page.get_by_role("link", name="Profile").click()
    expect(page.get_by_test_id("profile-email")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/profile$"))
    assert sum("/api/auth/refresh" in r for r in t.requests) == refreshes_before + 1


def test_works_on_a_phone_sized_screen(tab):
    t = tab(viewport=PHONE)
    page = t.open("/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"
    t.screenshot("login-phone")


def test_the_api_docs_render_under_the_content_security_policy(tab):
    t = tab()
    page = t.open("/api/docs")
    expect(page.get_by_text("flask-stack API").first).to_be_visible()
    expect(page.get_by_text("/api/auth/login").first).to_be_visible()
    t.screenshot("api-docs")


def test_a_forgotten_password_from_the_mail_in_the_sink_to_signing_in_with_the_new_one(tab, stack):
    email = new_email("forgot")
    assert stack.api().register(email).status_code == 201
    t = tab()
    page = t.open("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/forgot-password$"))
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    t.screenshot("forgot-password-sent")

    resets = until(lambda: [m for m in stack.mails(email) if "Reset your password" in m["subject"]], timeout=30)
    assert resets, stack.mails(email)
    link = re.search(r"https://\S+/reset-password#token=\S+", resets[-1]["text"])
    assert link, resets[-1]["text"]
    page.goto(link.group(0))
    page.get_by_label("New password").fill("too short")
    page.get_by_role("button", name="Set my new password").click()
    expect(page.locator("#new_password-error")).to_have_text("Use 12 to 1024 characters.")
    page.get_by_label("New password").fill("my new long passphrase")
    page.get_by_role("button", name="Set my new password").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Your new password is set")
    t.screenshot("password-reset")
    sign_in(page, email, "my new long passphrase")
    expect(page.get_by_test_id("profile-email")).to_have_text(email)
    # Following the link proved the address.
    expect(page.get_by_test_id("profile-verified")).to_have_text("Yes")
    # The link worked once.
    page.goto(link.group(0))
    page.get_by_label("New password").fill("yet another passphrase")
    page.get_by_role("button", name="Set my new password").click()
    expect(page.get_by_role("alert")).to_contain_text("This link no longer works")


def test_an_admin_disables_a_user_whose_next_action_lands_on_sign_in(tab, stack):
    admin_email, user_email = make_admin(stack), new_email("disabled")
    user, admin = tab(viewport=PHONE), tab()
    register(user.open("/register"), user_email)
    expect(user.page.get_by_test_id("profile-email")).to_have_text(user_email)

    sign_in(admin.open("/login"), admin_email)
    expect(admin.page.get_by_test_id("profile-role")).to_have_text("admin")
    admin.page.get_by_role("link", name="Users").click()
    row = admin.page.locator(f'tr[data-email="{user_email}"]')
    # The user list pages 10 at a time, oldest first: the new account is on the last page.
    pager = admin.page.get_by_text(re.compile(r"Page \d+ of \d+"))
    expect(pager).to_be_visible()
    while not row.count():
        shown, last = map(int, re.findall(r"\d+", pager.inner_text())[:2])
        assert shown < last, f"{user_email} is not in the list"
        admin.page.get_by_role("button", name="Next").click()
        expect(pager).to_contain_text(f"Page {shown + 1} of")
    row.get_by_test_id("toggle-active").click()
    expect(admin.page.get_by_role("status")).to_have_text(f"{user_email} is disabled and signed out everywhere.")
    expect(admin.page.locator(f'tr[data-email="{user_email}"]')).to_contain_text("Disabled")
    admin.screenshot("admin-disabled-user")

    user.page.get_by_role("link", name="Profile").click()
    expect(user.page).to_have_url(re.compile(r"/login$"))
    expect(user.page.get_by_role("alert")).to_contain_text("Your session has ended")
    user.screenshot("disabled-user-phone")
    sign_in(user.page, user_email)
    expect(user.page.get_by_role("alert")).to_have_text("That email and password do not match an account.")


def test_changing_the_password_keeps_this_device_and_signs_out_the_other(tab):
    email = new_email("change")
    laptop, phone = tab(), tab(viewport=PHONE)
    register(laptop.open("/register"), email)
    expect(laptop.page.get_by_test_id("profile-email")).to_have_text(email)
    sign_in(phone.open("/login"), email)
    expect(phone.page.get_by_test_id("profile-email")).to_have_text(email)

    laptop.page.get_by_label("Current password").fill("not my password")
    laptop.page.get_by_label("New password").fill("a changed passphrase")
    laptop.page.get_by_role("button", name="Change password").click()
    expect(laptop.page.get_by_role("alert")).to_have_text("That is not your current password.")
    laptop.page.get_by_label("Current password").fill(PASSWORD)
    laptop.page.get_by_role("button", name="Change password").click()
    expect(laptop.page.get_by_role("status")).to_contain_text("Your password is changed")
    laptop.page.reload()  # the new refresh cookie keeps this device signed in
    expect(laptop.page.get_by_test_id("profile-email")).to_have_text(email)

    phone.page.get_by_role("link", name="Profile").click()
    expect(phone.page).to_have_url(re.compile(r"/login$"))
    expect(phone.page.get_by_role("alert")).to_contain_text("Your session has ended")
