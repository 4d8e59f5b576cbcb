// fetch() helpers shared by the pages of the web UI: JSON in, problem details (RFC 9457) out.

/** A problem-details error (RFC 9457) or a network failure, ready to show. */
export class ApiError extends Error {
  constructor(title, detail, status = 0) {
    super(detail || title);
    this.title = title;
    this.detail = detail;
    this.status = status;
  }
}

/** fetch() that returns { status, body } (body: parsed JSON or null), or throws an ApiError
 *  carrying the problem's title and detail for an error status. */
export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, ...options });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("The service could not be reached", String(err.message || err));
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const title = body?.title || `${response.status} ${response.statusText}`.trim();
    const detail = body?.detail || (body ? "" : await response.text().catch(() => ""));
    throw new ApiError(title, detail, response.status);
  }
  return { status: response.status, body };
}

/** fetch() that returns parsed JSON or throws an ApiError carrying the problem's detail. */
export async function api(path, options = {}) {
  return (await request(path, options)).body;
}
