// The API client. The access token lives in this module's memory only (never in storage a script
// could read later); the refresh token is an HttpOnly cookie that the browser sends to
// /api/auth/refresh by itself, and that endpoint wants the CSRF token from a readable cookie echoed
// in X-CSRF-TOKEN.

let accessToken = null;
let refreshing = null;

export class ApiError extends Error {
  constructor(status, code, message, details = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

function csrfToken() {
  const entry = document.cookie.split("; ").find((cookie) => cookie.startsWith("csrf_refresh_token="));
  return entry ? decodeURIComponent(entry.slice("csrf_refresh_token=".length)) : "";
}

async function send(method, path, { body, token, headers = {} } = {}) {
  const request = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    request.headers["Content-Type"] = "application/json";
    request.body = JSON.stringify(body);
  }
  if (token) request.headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, request);
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // nginx or a proxy answered with something that is not our JSON
  }
  if (response.ok) return data;
  const error = data?.error ?? { code: "http_error", message: `The server answered ${response.status}.` };
  throw new ApiError(response.status, error.code, error.message, error.details, response.headers.get("Retry-After"));
}

// One refresh at a time, in this tab and across tabs (they share the cookie: two refreshes with
// the same refresh token would look like token theft to the server and end the session).
export function refreshSession() {
  if (!refreshing) {
    const refresh = async () => {
      try {
        const pair = await send("POST", "/api/auth/refresh", { headers: { "X-CSRF-TOKEN": csrfToken() } });
        accessToken = pair.access_token;
      } catch (error) {
        accessToken = null;
        throw error;
      }
    };
    const locked = navigator.locks ? navigator.locks.request("flask-stack-refresh", refresh) : refresh();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// Calls with the access token; an expired one is refreshed once, transparently. A token the server
// no longer takes (revoked: signed out elsewhere, the password changed, the account disabled) is
// forgotten, so the next screen asks the user to sign in instead of trying it again.
async function authorized(method, path, options = {}) {
  if (!accessToken) await refreshSession();
  try {
    return await send(method, path, { ...options, token: accessToken });
  } catch (error) {
    if (error.code !== "token_expired") {
      if (["token_revoked", "token_invalid", "unauthorized"].includes(error.code)) accessToken = null;
      throw error;
    }
    await refreshSession();
    return send(method, path, { ...options, token: accessToken });
  }
}

export const signedIn = () => accessToken !== null;

// After a reload: true when the refresh cookie still holds a session. A session that was revoked
// or has expired is an error, so the page can say so; no session at all is simply false.
export async function restoreSession() {
  if (!csrfToken()) return false; // never signed in here, or signed out
  try {
    await refreshSession();
    return true;
  } catch (error) {
    if (error.code === "unauthorized") return false;
    throw error;
  }
}

export async function login(email, password) {
  const pair = await send("POST", "/api/auth/login", { body: { email, password, refresh_cookie: true } });
  accessToken = pair.access_token;
}

export const register = (email, password) => send("POST", "/api/auth/register", { body: { email, password } });
export const me = () => authorized("GET", "/api/users/me");
export const users = (page, perPage = 10) => authorized("GET", `/api/users?page=${page}&per_page=${perPage}`);

async function endSession(path) {
  try {
    await authorized("POST", path);
  } finally {
    accessToken = null;
  }
}

export const logout = () => endSession("/api/auth/logout");
export const logoutEverywhere = () => endSession("/api/auth/logout-all");

// A password change ends every session, this one too: the answer is this tab's new pair (the
// refresh token in its cookie), so the user carries on here and is signed out everywhere else.
export async function changePassword(currentPassword, newPassword) {
  const pair = await authorized("POST", "/api/auth/password", {
    body: { current_password: currentPassword, new_password: newPassword, refresh_cookie: true },
  });
  accessToken = pair.access_token;
}

export const forgotPassword = (email) => send("POST", "/api/auth/password-reset", { body: { email } });
export const resetPassword = (token, password) =>
  send("POST", "/api/auth/password-reset/confirm", { body: { token, new_password: password } });
export const verifyEmail = (token) => send("POST", "/api/auth/verify", { body: { token } });
export const resendVerification = (email) => send("POST", "/api/auth/verify/resend", { body: { email } });
export const updateUser = (id, changes) => authorized("PATCH", `/api/users/${id}`, { body: changes });
