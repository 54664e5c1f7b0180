// What the API's error codes mean to a person.

const SIGN_IN_AGAIN = "Please sign in again.";

const WORDS = {
  invalid_credentials: () => "That email and password do not match an account.",
  email_taken: () => "An account with this email already exists. Sign in instead?",
  rate_limited: (error) =>
    `Too many attempts. Please wait ${error.retryAfter ? `${error.retryAfter} seconds` : "a moment"} and try again.`,
  service_unavailable: () => "The service is briefly unavailable. Please try again in a moment.",
  network: () => "The server cannot be reached. Check your connection and try again.",
  payload_too_large: () => "That is more text than the server accepts.",
  token_revoked: () =>
    "Your session has ended: you signed out here or on another device, or your account was changed. " + SIGN_IN_AGAIN,
  token_expired: () => "Your session has expired. " + SIGN_IN_AGAIN,
  token_invalid: () => SIGN_IN_AGAIN,
  unauthorized: () => SIGN_IN_AGAIN,
  forbidden: () => "This page is for administrators.",
  wrong_password: () => "That is not your current password.",
  link_invalid: () => "This link no longer works: it was used already, or the password changed since. Ask for a new one.",
  link_expired: () => "This link has expired. Ask for a new one.",
  email_not_verified: () => "Please verify your email address first: follow the link we mailed you.",
  last_admin: () => "This is the last administrator: make someone else an administrator first.",
  not_found: () => "That account no longer exists.",
  validation_error: () => "Please correct the fields marked below.",
  internal_error: () => "Something went wrong on our side. Please try again.",
};

export function describe(error) {
  const words = WORDS[error.code];
  return words ? words(error) : error.message || "Something went wrong. Please try again.";
}

// Field messages for a validation error, in words a form can show next to each field.
export function fieldMessages(error) {
  const messages = {};
  for (const [field, problems] of Object.entries(error.details ?? {})) {
    const text = [].concat(problems).join(" ");
    if (field === "email") messages.email = "Enter a valid email address.";
    else if (["password", "new_password"].includes(field) && /Length/.test(text)) messages[field] = "Use 12 to 1024 characters.";
    else if (field === "current_password") messages.current_password = "Enter your current password.";
    else messages[field] = text;
  }
  return messages;
}

// Errors after which this page no longer has a session.
export const endsSession = (error) => ["token_revoked", "token_invalid", "unauthorized", "token_expired"].includes(error.code);
