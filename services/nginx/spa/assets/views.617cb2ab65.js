// The screens. Each renders into <main>; navigation comes in with the context.

import * as api from "./api.0bc1daa734.js";
import { h, replaceChildren } from "./dom.09a6f7f8a2.js";
import { describe, fieldMessages } from "./messages.b7197e30f8.js";

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

function form({ title, fields, submitLabel, onSubmit, footer, flash }) {
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
  return h("section", { class: "card" }, h("h1", { tabindex: "-1" }, title), status, element, footer);
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
      footer: h("p", { class: "aside" }, "New here? ", h("a", { href: "/register", "data-link": true }, "Create an account")),
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
        navigate("/profile", { text: "Welcome! Your account is ready.", kind: "success" });
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

export function profileView(main, { navigate, flash, user }) {
  const since = new Date(user.created_at).toLocaleDateString(undefined, { dateStyle: "long" });
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
  );
}

export async function adminView(main, context, page = 1) {
  const body = await api.users(page);
  const turn = (to) => () => adminView(main, context, to);
  const rows = body.items.map((user) =>
    h("tr", {}, h("td", {}, user.email), h("td", {}, user.role), h("td", {}, new Date(user.created_at).toLocaleDateString())),
  );
  replaceChildren(
    main,
    h(
      "section",
      { class: "card wide" },
      h("h1", { tabindex: "-1" }, "Users"),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { "data-testid": "user-table" },
          h("caption", { class: "visually-hidden" }, "Every account, oldest first"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Email"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Created"))),
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
