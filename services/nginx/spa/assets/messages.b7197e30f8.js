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
  token_revoked: () => "Your session has ended: you signed out here or on another device. " + SIGN_IN_AGAIN,
  token_expired: () => "Your session has expired. " + SIGN_IN_AGAIN,
  token_invalid: () => SIGN_IN_AGAIN,
  unauthorized: () => SIGN_IN_AGAIN,
  forbidden: () => "This page is for administrators.",
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
    else if (field === "password" && /Length/.test(text)) messages.password = "Use 12 to 1024 characters.";
    else messages[field] = text;
  }
  return messages;
}

// Errors after which this page no longer has a session.
export const endsSession = (error) => ["token_revoked", "token_invalid", "unauthorized", "token_expired"].includes(error.code);
