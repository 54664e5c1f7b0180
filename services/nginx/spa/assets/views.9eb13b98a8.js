// The screens. Each renders into <main>; navigation comes in with the context.

import * as api from "./api.5fddebdfc1.js";
import { h, replaceChildren } from "./dom.09a6f7f8a2.js";
import { describe, endsSession, fieldMessages } from "./messages.0b7f9ab398.js";

function notice(text, kind = "error") {
  if (!text) return null;
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function field({ name, label, type, autocomplete, hint, minlength }) {
  const hintId = `${name}-hint`;
  const errorId = `${name}-error`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: name }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("input", {
      id: name,
      name,
      type,
      autocomplete,
      required: true,
      minlength,
      "aria-describedby": [hint ? hintId : null, errorId].filter(Boolean).join(" "),
    }),
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

function showFieldErrors(form, messages) {
  for (const input of form.querySelectorAll("input")) {
    const slot = form.querySelector(`#${input.name}-error`);
    const message = messages[input.name];
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    slot.textContent = message ?? "";
    slot.hidden = !message;
  }
}

// While a request is in flight the button is disabled and shows a spinner.
function busy(button, on) {
  button.disabled = on;
  button.classList.toggle("busy", on);
  if (on) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

function form({ title, fields, submitLabel, onSubmit, footer, flash, heading = "h1" }) {
  const status = h("div", { class: "form-status" }, notice(flash?.text, flash?.kind));
  const button = h("button", { type: "submit", class: "primary" }, h("span", { class: "label" }, submitLabel));
  const element = h("form", { novalidate: true }, ...fields.map(field), button);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(element));
    busy(button, true);
    replaceChildren(status);
    showFieldErrors(element, {});
    try {
      await onSubmit(values);
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      replaceChildren(status, notice(describe(error)));
      showFieldErrors(element, fieldMessages(error));
    } finally {
      busy(button, false);
    }
  });
  return h("section", { class: "card" }, h(heading, { tabindex: "-1" }, title), status, element, footer);
}

export function loginView(main, { navigate, flash }) {
  replaceChildren(
    main,
    form({
      title: "Sign in",
      flash,
      fields: [
        { name: "email", label: "Email", type: "email", autocomplete: "username" },
        { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
      ],
      submitLabel: "Sign in",
      onSubmit: async ({ email, password }) => {
        await api.login(email, password);
        navigate("/profile");
      },
      footer: h(
        "p",
        { class: "aside" },
        h("a", { href: "/forgot-password", "data-link": true }, "Forgot your password?"),
        " · New here? ",
        h("a", { href: "/register", "data-link": true }, "Create an account"),
      ),
    }),
  );
}

export function registerView(main, { navigate, flash }) {
  replaceChildren(
    main,
    form({
      title: "Create an account",
      flash,
      fields: [
        { name: "email", label: "Email", type: "email", autocomplete: "email" },
        {
          name: "password",
          label: "Password",
          type: "password",
          autocomplete: "new-password",
          hint: "At least 12 characters.",
          minlength: 12,
        },
      ],
      submitLabel: "Create account",
      onSubmit: async ({ email, password }) => {
        await api.register(email, password);
        await api.login(email, password);
        navigate("/profile", { text: "Welcome! Your account is ready. We mailed you a link to verify your address.", kind: "success" });
      },
      footer: h("p", { class: "aside" }, "Have an account? ", h("a", { href: "/login", "data-link": true }, "Sign in")),
    }),
  );
}

function signOutButton(label, action, navigate, farewell) {
  const button = h("button", { type: "button" }, h("span", { class: "label" }, label));
  button.addEventListener("click", async () => {
    busy(button, true);
    try {
      await action();
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      // The session is over either way: this page has forgotten its token.
    }
    navigate("/login", { text: farewell, kind: "success" });
  });
  return button;
}

const NEW_PASSWORD = {
  name: "new_password",
  label: "New password",
  type: "password",
  autocomplete: "new-password",
  hint: "At least 12 characters.",
  minlength: 12,
};

function verificationFacts(user) {
  if (user.email_verified) return [h("dt", {}, "Email verified"), h("dd", { "data-testid": "profile-verified" }, "Yes")];
  const status = h("span", { class: "form-status" });
  const button = h("button", { type: "button", class: "link-button" }, h("span", { class: "label" }, "Send the link again"));
  button.addEventListener("click", async () => {
    busy(button, true);
    try {
      await api.resendVerification(user.email);
      replaceChildren(status, notice("A new link is on its way to your inbox.", "success"));
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      replaceChildren(status, notice(describe(error)));
    } finally {
      busy(button, false);
    }
  });
  return [h("dt", {}, "Email verified"), h("dd", { "data-testid": "profile-verified" }, "Not yet. ", button, status)];
}

export function profileView(main, { navigate, flash, user }) {
  const since = new Date(user.created_at).toLocaleDateString(undefined, { dateStyle: "long" });
  const changePassword = form({
    title: "Change your password",
    heading: "h2",
    fields: [
      { name: "current_password", label: "Current password", type: "password", autocomplete: "current-password" },
      NEW_PASSWORD,
    ],
    submitLabel: "Change password",
    onSubmit: async ({ current_password: current, new_password: next }) => {
      await api.changePassword(current, next);
      navigate("/profile", { text: "Your password is changed. Every other device is signed out.", kind: "success" });
    },
  });
  replaceChildren(
    main,
    h(
      "section",
      { class: "card" },
      h("h1", { tabindex: "-1" }, "Your profile"),
      notice(flash?.text, flash?.kind),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Email"),
        h("dd", { "data-testid": "profile-email" }, user.email),
        ...verificationFacts(user),
        h("dt", {}, "Role"),
        h("dd", { "data-testid": "profile-role" }, user.role),
        h("dt", {}, "Member since"),
        h("dd", {}, since),
      ),
      h(
        "div",
        { class: "actions" },
        signOutButton("Sign out", api.logout, navigate, "You are signed out."),
        signOutButton("Sign out everywhere", api.logoutEverywhere, navigate, "You are signed out on every device."),
      ),
    ),
    changePassword,
  );
}

// The token of a mailed link, from the address's fragment (never sent to a server).
function linkToken() {
  return new URLSearchParams(location.hash.slice(1)).get("token");
}

function askAgain(path, label) {
  return h("p", { class: "aside" }, h("a", { href: path, "data-link": true }, label));
}

export function forgotPasswordView(main, { flash }) {
  const card = form({
    title: "Forgot your password?",
    flash,
    fields: [{ name: "email", label: "Email", type: "email", autocomplete: "email" }],
    submitLabel: "Send me a link",
    onSubmit: async ({ email }) => {
      await api.forgotPassword(email);
      replaceChildren(
        main,
        h(
          "section",
          { class: "card" },
          h("h1", { tabindex: "-1" }, "Check your inbox"),
          notice("If an account has this address, a link to choose a new password is on its way. It works for 30 minutes, once.", "success"),
          askAgain("/login", "Back to sign in"),
        ),
      );
      main.querySelector("h1")?.focus();
    },
    footer: askAgain("/login", "Back to sign in"),
  });
  replaceChildren(main, card);
}

export function resetPasswordView(main, { navigate }) {
  const token = linkToken();
  if (!token) {
    replaceChildren(main, h("section", { class: "card" }, h("h1", { tabindex: "-1" }, "Choose a new password"), notice("This page needs the link from the mail we sent you."), askAgain("/forgot-password", "Ask for a link")));
    return;
  }
  replaceChildren(
    main,
    form({
      title: "Choose a new password",
      fields: [NEW_PASSWORD],
      submitLabel: "Set my new password",
      onSubmit: async ({ new_password: password }) => {
        await api.resetPassword(token, password);
        navigate("/login", { text: "Your new password is set, and every device is signed out. Sign in with it.", kind: "success" });
      },
      footer: askAgain("/forgot-password", "Ask for a new link"),
    }),
  );
}

export async function verifyEmailView(main, { user }) {
  const token = linkToken();
  const resend = form({
    title: "Verify your email address",
    fields: [{ name: "email", label: "Email", type: "email", autocomplete: "email" }],
    submitLabel: "Send me a new link",
    onSubmit: async ({ email }) => {
      await api.resendVerification(email);
      replaceChildren(main, h("section", { class: "card" }, h("h1", { tabindex: "-1" }, "Check your inbox"), notice("If that address needs verifying, a new link is on its way.", "success")));
    },
  });
  if (!token) {
    replaceChildren(main, resend);
    return;
  }
  try {
    await api.verifyEmail(token);
  } catch (error) {
    if (!(error instanceof api.ApiError)) throw error;
    replaceChildren(main, resend);
    replaceChildren(resend.querySelector(".form-status"), notice(describe(error)));
    return;
  }
  replaceChildren(
    main,
    h(
      "section",
      { class: "card" },
      h("h1", { tabindex: "-1" }, "Your email address is verified"),
      notice("Thank you: your address is confirmed.", "success"),
      askAgain(user ? "/profile" : "/login", user ? "Go to your profile" : "Sign in"),
    ),
  );
}

const ROLES = ["user", "admin"];

export async function adminView(main, context, page = 1, flash = null) {
  const body = await api.users(page);
  const turn = (to) => () => adminView(main, context, to);
  // A change, then this page again with what it did; a change that ended this admin's own
  // session (stepping down) goes to the sign-in page, as any ended session does.
  const change = (user, changes, done) => async (event) => {
    event.currentTarget.disabled = true;
    try {
      await api.updateUser(user.id, changes);
      await adminView(main, context, page, { text: done, kind: "success" });
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      if (endsSession(error)) {
        context.navigate("/login", { text: describe(error), kind: "error" });
        return;
      }
      await adminView(main, context, page, { text: describe(error), kind: "error" });
    }
  };
  const rows = body.items.map((user) => {
    const role = h(
      "select",
      { "aria-label": `Role of ${user.email}`, "data-testid": "role" },
      ROLES.map((name) => h("option", { value: name, selected: name === user.role }, name)),
    );
    role.addEventListener("change", (event) =>
      change(user, { role: role.value }, `${user.email} is now ${role.value === "admin" ? "an administrator" : "a user"}.`)(event),
    );
    const toggle = h(
      "button",
      { type: "button", "data-testid": "toggle-active" },
      user.active ? `Disable` : `Enable`,
      h("span", { class: "visually-hidden" }, ` ${user.email}`),
    );
    toggle.addEventListener(
      "click",
      change(user, { active: !user.active }, user.active ? `${user.email} is disabled and signed out everywhere.` : `${user.email} is enabled again.`),
    );
    return h(
      "tr",
      { "data-email": user.email },
      h("td", {}, user.email),
      h("td", {}, role),
      h("td", {}, user.active ? "Active" : "Disabled"),
      h("td", {}, toggle),
      h("td", {}, new Date(user.created_at).toLocaleDateString()),
    );
  });
  const column = (label) => h("th", { scope: "col" }, label);
  replaceChildren(
    main,
    h(
      "section",
      { class: "card wide" },
      h("h1", { tabindex: "-1" }, "Users"),
      h("div", { class: "form-status" }, notice(flash?.text, flash?.kind)),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { "data-testid": "user-table" },
          h("caption", { class: "visually-hidden" }, "Every account, oldest first"),
          h("thead", {}, h("tr", {}, column("Email"), column("Role"), column("Status"), column("Access"), column("Created"))),
          h("tbody", {}, rows),
        ),
      ),
      h(
        "nav",
        { class: "pager", "aria-label": "Pages" },
        h("button", { type: "button", disabled: page <= 1, onclick: turn(page - 1) }, "Previous"),
        h("span", { "aria-live": "polite" }, `Page ${body.page} of ${Math.max(body.pages, 1)} · ${body.total} users`),
        h("button", { type: "button", disabled: page >= body.pages, onclick: turn(page + 1) }, "Next"),
      ),
    ),
  );
}

export function notFoundView(main) {
  replaceChildren(
    main,
    h(
      "section",
      { class: "card" },
      h("h1", { tabindex: "-1" }, "Page not found"),
      h("p", {}, "There is nothing here. ", h("a", { href: "/", "data-link": true }, "Go to the start"), "."),
    ),
  );
}

export function errorView(main, message) {
  replaceChildren(
    main,
    h(
      "section",
      { class: "card" },
      h("h1", { tabindex: "-1" }, "Something went wrong"),
      notice(message),
      h("p", {}, h("a", { href: location.pathname, "data-link": true }, "Try again")),
    ),
  );
}

export function loadingView(main) {
  replaceChildren(main, h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Loading…"));
}
