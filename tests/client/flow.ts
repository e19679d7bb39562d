// A frontend's first session, written against types generated from the served
// /openapi.json by openapi-typescript (default options) and sent with openapi-fetch.
// It type-checks under `tsc --strict`, then runs against a real server: sign up, log in,
// create an event, register, cancel, and patch with If-Match.
//
// Usage: node flow.js BASE_URL   (run.sh compiles and runs it)

import createClient from "openapi-fetch";
import type { components, paths } from "../../target/client/schema.js";

type EventRead = components["schemas"]["EventRead"];

const baseUrl = process.argv[2];
if (!baseUrl) {
  throw new Error("usage: node flow.js BASE_URL");
}

const api = createClient<paths>({ baseUrl });

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

async function main(): Promise<void> {
  const email = `client-${Date.now()}-${Math.floor(Math.random() * 1e9)}@example.com`;
  const password = "typed client password";

  const signUp = await api.POST("/api/v1/users", {
    body: { email, password, full_name: "Typed Client" },
  });
  check(signUp.response.status === 201, `sign-up answers 201, got ${signUp.response.status}`);
  check(signUp.data !== undefined, "sign-up returns the user");
  check(signUp.data.email === email, "the user is the one signed up");
  check(signUp.response.headers.get("location") !== null, "sign-up sends a Location");

  const login = await api.POST("/api/v1/auth/token", { body: { email, password } });
  check(login.data !== undefined, `login succeeds, got ${login.response.status}`);
  const token: string = login.data.access_token;
  const auth = { Authorization: `Bearer ${token}` };

  const me = await api.GET("/api/v1/users/me", { headers: auth });
  check(me.data?.id === signUp.data.id, "GET /users/me is the signed-up user");

  const created = await api.POST("/api/v1/events", {
    headers: auth,
    body: {
      title: "Typed client meetup",
      starts_at: "2030-03-01T18:00:00Z",
      ends_at: "2030-03-01T21:00:00Z",
      capacity: 10,
      status: "published",
    },
  });
  check(created.data !== undefined, `event created, got ${created.response.status}`);
  const event: EventRead = created.data;
  check(event.status === "published" && event.capacity === 10, "the event is as created");

  const registered = await api.POST("/api/v1/events/{id}/attendees", {
    headers: auth,
    params: { path: { id: event.id } },
    body: {},
  });
  check(registered.data !== undefined, `registered, got ${registered.response.status}`);
  check(registered.data.status === "confirmed", "a free seat confirms the caller");

  const afterRegistration = await api.GET("/api/v1/events/{id}", {
    params: { path: { id: event.id } },
  });
  check(afterRegistration.data?.confirmed_count === 1, "the seat is counted");

  const cancelled = await api.DELETE("/api/v1/events/{id}/attendees/{attendee_id}", {
    headers: auth,
    params: { path: { id: event.id, attendee_id: registered.data.id } },
  });
  check(cancelled.response.status === 204, `cancel answers 204, got ${cancelled.response.status}`);

  const current = await api.GET("/api/v1/events/{id}", {
    params: { path: { id: event.id } },
  });
  check(current.data !== undefined, "the event reads back");
  const etag = current.response.headers.get("etag");
  check(etag === `"${current.data.version}"`, "ETag is the quoted version");

  const patched = await api.PATCH("/api/v1/events/{id}", {
    headers: { ...auth, "If-Match": etag, "Content-Type": "application/json-patch+json" },
    params: { path: { id: event.id } },
    body: [
      { op: "test", path: "/title", value: "Typed client meetup" },
      { op: "replace", path: "/title", value: "Typed client meetup, renamed" },
      { op: "remove", path: "/capacity" },
    ],
  });
  check(patched.data !== undefined, `patch with If-Match applies, got ${patched.response.status}`);
  check(patched.data.title === "Typed client meetup, renamed", "the title changed");
  check(patched.data.capacity === null, "remove of an optional member clears it");
  check(patched.data.version === current.data.version + 1, "the version moved by one");

  const stale = await api.PATCH("/api/v1/events/{id}", {
    headers: { ...auth, "If-Match": etag, "Content-Type": "application/json-patch+json" },
    params: { path: { id: event.id } },
    body: [{ op: "replace", path: "/location", value: "Room 2" }],
  });
  check(stale.response.status === 412, `a stale If-Match answers 412, got ${stale.response.status}`);
  check(stale.error !== undefined, "a 412 carries a problem body");

  console.log("client: 1 passed, 0 failed");
}

main().catch((err: unknown) => {
  console.error(err);
  console.log("client: 0 passed, 1 failed");
  process.exit(1);
});
