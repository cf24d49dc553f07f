// The v1 API as a client sees it: JSON in, JSON or bytes out, errors as the envelope's message.
// The API key lives in this tab's sessionStorage only, never in localStorage or a URL.

const KEY = "wgan-api-key";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

async function envelope(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall through to a plain message
  }
  const error = body && body.error;
  if (error) return new ApiError(response.status, error.code, error.message, error.details);
  return new ApiError(response.status, "http_" + response.status, `the server answered ${response.status}`);
}

// fetch `path`; `body` is an object (sent as JSON) or FormData. `as`: "json" or "blob".
export async function call(path, { body, as = "json" } = {}) {
  const headers = {};
  const key = apiKey.get();
  if (key) headers.authorization = "Bearer " + key;
  const init = { headers, method: body === undefined ? "GET" : "POST" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const error = await envelope(response);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return as === "blob" ? response.blob() : response.json();
}

// Offer `blob` as a download named `name`.
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// Small DOM helper: el("p", {class: "x", text: "hi"}, child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

export const $ = (id) => document.getElementById(id);

// A number field's value as JSON would carry it: "" -> undefined, otherwise Number (the API judges it).
export function numberOf(input) {
  const text = input.value.trim();
  return text === "" ? undefined : Number(text);
}
