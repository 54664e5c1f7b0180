// Boot and routing. Client-side routes (/login, /register, /profile, /admin, and the pages mailed
// links open: /reset-password, /verify-email) survive a reload and a
// deep link because nginx answers every path that is not a file with index.html.

import * as api from "./api.5fddebdfc1.js";
import { h, replaceChildren } from "./dom.09a6f7f8a2.js";
import { describe, endsSession } from "./messages.0b7f9ab398.js";
import {
  adminView,
  errorView,
  forgotPasswordView,
  loadingView,
  loginView,
  notFoundView,
  profileView,
  registerView,
  resetPasswordView,
  verifyEmailView,
} from "./views.9eb13b98a8.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const SIGNED_OUT_ONLY = ["/login", "/register", "/forgot-password"];
const SIGNED_IN_ONLY = ["/profile", "/admin"];

function link(path, label) {
  const attributes = { href: path, "data-link": true };
  if (location.pathname === path) attributes["aria-current"] = "page";
  return h("a", attributes, label);
}

function renderNav(user) {
  if (user) replaceChildren(nav, link("/profile", "Profile"), user.role === "admin" ? link("/admin", "Users") : null);
  else replaceChildren(nav, link("/login", "Sign in"), link("/register", "Create account"));
}

// `flash` is a one-time message for the next screen: {text, kind}.
function navigate(path, flash = null, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"]({ flash }, "", path);
  return route(flash);
}

async function route(flash = history.state?.flash ?? null) {
  const path = location.pathname.replace(/\/+$/, "") || "/";
  loadingView(main);
  try {
    const user = api.signedIn() ? await api.me() : null;
    renderNav(user);
    if (path === "/") return navigate(user ? "/profile" : "/login", flash, { replace: true });
    if (user && SIGNED_OUT_ONLY.includes(path)) return navigate("/profile", null, { replace: true });
    if (!user && SIGNED_IN_ONLY.includes(path)) {
      return navigate("/login", flash ?? { text: "Please sign in to continue.", kind: "info" }, { replace: true });
    }
    if (path === "/admin" && user.role !== "admin") {
      return navigate("/profile", { text: "The user list is for administrators.", kind: "error" }, { replace: true });
    }
    const context = { navigate, flash, user };
    const views = {
      "/login": loginView,
      "/register": registerView,
      "/forgot-password": forgotPasswordView,
      "/reset-password": resetPasswordView,
      "/verify-email": verifyEmailView,
      "/profile": profileView,
      "/admin": adminView,
    };
    await (views[path] ?? notFoundView)(main, context);
    // A flash is shown once, not again on reload.
    if (flash) history.replaceState({ flash: null }, "", location.pathname + location.hash);
  } catch (error) {
    if (!(error instanceof api.ApiError)) throw error;
    if (endsSession(error)) {
      renderNav(null);
      return navigate("/login", { text: describe(error), kind: "error" }, { replace: true });
    }
    errorView(main, describe(error));
  }
  main.querySelector("h1")?.focus();
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-link]");
  if (!anchor || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});
window.addEventListener("popstate", () => route());

// On every load the access token is gone with the old page; the refresh cookie brings the session back.
try {
  await api.restoreSession();
  await route();
} catch (error) {
  await route(error instanceof api.ApiError ? { text: describe(error), kind: "error" } : null);
}
