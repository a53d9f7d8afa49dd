/**
 * What went wrong, in words any transport understands: the HTTP layer (src/http/errors.ts) alone
 * turns a kind into a status; a job or a script reads it as it is.
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'unprocessable'
  | 'rate_limited'
  | 'unavailable';

/**
 * One entry per stable error `code` the service can answer with: what it means and what the client
 * should do. The problem pages (`GET /problems/:code`, src/http/problem-pages.ts) are generated from
 * it, and every problem's `type` points at its code's page. The error constructors in errors.ts
 * accept only codes of this registry, of their own kind, so a new code cannot reach a client
 * without its page.
 *
 * `kind` is the domain error kind the code is thrown with; `http` marks codes only the HTTP layer
 * raises (framework errors), with the status it answers them with.
 */
export type ErrorCodeEntry =
  | { kind: ErrorKind; summary: string; remedy: string }
  | { kind: 'http'; status: number; summary: string; remedy: string };

export const ERROR_CODES = {
  // Requests the service cannot read or route
  invalid_request: {
    kind: 'invalid',
    summary: 'One or more fields of the request (body, query string, path or headers) are invalid.',
    remedy:
      'Read `errors`: each entry names the field (`path`) and what is wrong with it (`message`). Fix them and send again.',
  },
  invalid_json: {
    kind: 'invalid',
    summary: 'The body is not well-formed JSON, is empty where JSON was announced, or is not valid UTF-8.',
    remedy: 'Send a UTF-8 JSON document with `Content-Type: application/json`.',
  },
  invalid_content_length: {
    kind: 'http',
    status: 400,
    summary: 'The Content-Length header does not match the body sent.',
    remedy: 'Let your HTTP library compute Content-Length.',
  },
  invalid_url: {
    kind: 'http',
    status: 400,
    summary: 'The request URL could not be decoded (for example a broken percent-encoding).',
    remedy: 'Percent-encode path segments and query values correctly.',
  },
  uri_too_long: {
    kind: 'http',
    status: 414,
    summary: 'A path segment is longer than the service accepts.',
    remedy: 'Ids are UUIDs; check that the URL holds what you meant to send.',
  },
  body_too_large: {
    kind: 'http',
    status: 413,
    summary: 'The request body is larger than the service accepts.',
    remedy: 'Send less at once: split a large task tree into several requests.',
  },
  unsupported_media_type: {
    kind: 'http',
    status: 415,
    summary: 'The body is in a media type the route does not accept.',
    remedy: 'Send JSON with `Content-Type: application/json`.',
  },
  route_not_found: {
    kind: 'not_found',
    summary: 'No route answers this method and path.',
    remedy: 'Check the method and path against the OpenAPI document at /openapi.json.',
  },
  invalid_cursor: {
    kind: 'invalid',
    summary: 'The pagination cursor is malformed or belongs to another list or filter.',
    remedy:
      'Pass back the `nextCursor` of the previous page unchanged, with the same filters; start again without a cursor if in doubt.',
  },
  invalid_date: {
    kind: 'invalid',
    summary: 'A date is not a real local calendar day in the form YYYY-MM-DD from 1900-01-01 to 9998-12-31.',
    remedy: 'Send dates as YYYY-MM-DD, for example 2026-03-01, no later than 9998-12-31.',
  },
  invalid_timezone: {
    kind: 'invalid',
    summary: 'The time zone is not an IANA time zone name.',
    remedy: 'Use a name such as Asia/Shanghai or Europe/Berlin.',
  },

  // Authentication
  missing_token: {
    kind: 'unauthorized',
    summary: 'The route needs an access token and none was sent.',
    remedy: 'Send `Authorization: Bearer <accessToken>` from register, login or refresh.',
  },
  invalid_token: {
    kind: 'unauthorized',
    summary: 'The access token is not valid (bad signature, wrong issuer or audience, or its account is gone).',
    remedy: 'Log in again to get a new token pair.',
  },
  token_expired: {
    kind: 'unauthorized',
    summary: 'The access token has expired.',
    remedy: 'Exchange the refresh token at POST /v1/auth/refresh and retry with the new access token.',
  },
  invalid_credentials: {
    kind: 'unauthorized',
    summary: 'The handle or the password is wrong.',
    remedy: 'Check both and try again; repeated failures spend the per-address login budget.',
  },
  invalid_refresh_token: {
    kind: 'unauthorized',
    summary: 'The refresh token is unknown, expired or was logged out.',
    remedy: 'Log in again.',
  },
  refresh_token_reused: {
    kind: 'unauthorized',
    summary:
      'A refresh token was used twice, which suggests it was stolen: every session descending from it is revoked.',
    remedy: 'Log in again, and use each refresh token only once.',
  },
  invalid_current_password: {
    kind: 'forbidden',
    summary: 'The current password given to change the password is wrong.',
    remedy: 'Send the password the account uses now as `currentPassword`.',
  },
  handle_taken: {
    kind: 'conflict',
    summary: 'Another account already uses this handle.',
    remedy: 'Choose another handle.',
  },

  // Access
  forbidden: {
    kind: 'forbidden',
    summary: 'You are a member of the circle, but your role does not allow this action.',
    remedy: 'Ask the circle owner or an admin to do it, or to give you the role it needs.',
  },
  not_a_member: {
    kind: 'invalid',
    summary: 'The user named in the request is not a member of the circle.',
    remedy: 'Name a current member of the circle.',
  },
  circle_not_found: {
    kind: 'not_found',
    summary:
      'No such circle, or you are not a member of it (outsiders are told nothing more). Joining an invite-only circle without one of its own invite codes answers this too.',
    remedy:
      'Check the id; join the circle first if it is one you should see. For an invite-only circle, check the invite code with whoever invited you.',
  },
  invite_not_found: {
    kind: 'not_found',
    summary:
      'No such invite code in this circle: revoking a code the circle never issued, or joining an open circle with one.',
    remedy: 'Check the code with whoever invited you; an open circle needs no code.',
  },
  member_not_found: {
    kind: 'not_found',
    summary: 'The user is not a member of this circle.',
    remedy: 'List the members with GET /v1/circles/{circleId}/members.',
  },
  user_not_found: {
    kind: 'not_found',
    summary: 'No such user.',
    remedy: 'Check the user id.',
  },
  project_not_found: {
    kind: 'not_found',
    summary: 'No such project, or it belongs to a circle you are not a member of.',
    remedy: "Check the id; list a circle's projects with GET /v1/circles/{circleId}/projects.",
  },
  task_not_found: {
    kind: 'not_found',
    summary: 'No such task, or it belongs to a circle you are not a member of.',
    remedy: "Check the id; list a project's tasks with GET /v1/projects/{projectId}/tasks.",
  },
  claim_not_found: {
    kind: 'not_found',
    summary: 'No such claim, or it is not yours to see.',
    remedy: 'List your claims with GET /v1/me/claims.',
  },
  settlement_not_found: {
    kind: 'not_found',
    summary: 'No such settlement, or it belongs to a circle you are not a member of.',
    remedy: 'Use the id answered by POST /v1/projects/{projectId}/settlements.',
  },
  challenge_not_found: {
    kind: 'not_found',
    summary: 'No such challenge, or it belongs to a circle you are not a member of.',
    remedy: "List a circle's challenges with GET /v1/circles/{circleId}/challenges.",
  },
  webhook_not_found: {
    kind: 'not_found',
    summary: 'No such webhook in this circle.',
    remedy: "List the circle's webhooks with GET /v1/circles/{circleId}/webhooks.",
  },
  delivery_not_found: {
    kind: 'not_found',
    summary: 'No such delivery of this webhook.',
    remedy: "List the webhook's deliveries with GET /v1/circles/{circleId}/webhooks/{webhookId}/deliveries.",
  },
  problem_type_not_found: {
    kind: 'not_found',
    summary: 'The service answers with no error code of this name.',
    remedy: 'See GET /problems for every code.',
  },

  // Circles and members
  already_member: {
    kind: 'conflict',
    summary: 'You are already a member of this circle.',
    remedy: 'Nothing to do.',
  },
  invite_expired: {
    kind: 'conflict',
    summary: 'The invite code has expired.',
    remedy: 'Ask an owner or admin of the circle for a new invite.',
  },
  invite_revoked: {
    kind: 'conflict',
    summary: 'The circle revoked this invite code.',
    remedy: 'Ask an owner or admin of the circle for a new invite.',
  },
  invite_used_up: {
    kind: 'conflict',
    summary: 'The invite code has been used as often as it allows.',
    remedy: 'Ask an owner or admin of the circle for a new invite.',
  },
  owner_cannot_leave: {
    kind: 'conflict',
    summary: 'The owner cannot leave the circle.',
    remedy: 'Make another member the owner first (PATCH their membership with role owner).',
  },
  owner_required: {
    kind: 'conflict',
    summary: 'A circle always has exactly one owner; this change would leave it without one.',
    remedy: 'Make someone else the owner first.',
  },

  // Projects and task trees
  invalid_status_transition: {
    kind: 'conflict',
    summary: 'The project cannot move from its current status to the one requested.',
    remedy:
      'Projects go draft → open → closed → settled, or to cancelled; read the project and ask for a reachable status.',
  },
  project_not_open: {
    kind: 'conflict',
    summary: 'The project is a draft: there is nothing to claim or settle yet.',
    remedy: 'Open the project (PATCH its status to open) first.',
  },
  project_settled: {
    kind: 'conflict',
    summary: 'The project has been settled; it can no longer change.',
    remedy: 'Start a new project for further work.',
  },
  project_cancelled: {
    kind: 'conflict',
    summary: 'The project was cancelled; it can no longer change.',
    remedy: 'Start a new project for further work.',
  },
  invalid_task_tree: {
    kind: 'invalid',
    summary: 'The task tree is malformed: a parent outside the project, a duplicate or unknown key, or too many tasks.',
    remedy: 'Read `errors` for the offending node and fix the tree; nothing was created.',
  },
  invalid_dependencies: {
    kind: 'invalid',
    summary: 'A dependency names a task this task cannot depend on (itself, another project, an unknown task).',
    remedy: 'Depend only on other tasks of the same project.',
  },
  dependency_cycle: {
    kind: 'invalid',
    summary: 'These dependencies would make tasks wait for each other forever.',
    remedy: 'Remove one dependency of the cycle shown in `errors`.',
  },
  task_not_open: {
    kind: 'conflict',
    summary: 'The task is done or cancelled; it can no longer be claimed or changed.',
    remedy: 'Pick another task.',
  },
  task_not_leaf: {
    kind: 'conflict',
    summary: 'The change applies to leaf tasks only, and this task has sub-tasks.',
    remedy: 'Change its sub-tasks instead.',
  },
  task_has_claims: {
    kind: 'conflict',
    summary:
      'The task has been claimed, so it cannot be split into sub-tasks or made to wait for an open task any more.',
    remedy: 'Add the new work as a separate task, or release or revoke its claims first.',
  },
  slots_below_live_claims: {
    kind: 'conflict',
    summary: 'More members hold the task right now than the slot count asked for.',
    remedy: 'Wait for claims to end, or revoke some, before lowering the slots.',
  },
  reason_required: {
    kind: 'invalid',
    summary: 'This action needs a reason, and none (or only blanks) was given.',
    remedy: 'Say why in `reason`; members see it.',
  },

  // Claims and leases
  task_full: {
    kind: 'conflict',
    summary: 'Every slot of the task is held by a live claim.',
    remedy: 'Pick another task, or use claims/next to get the best one still free.',
  },
  already_claimed: {
    kind: 'conflict',
    summary: 'You already hold a live claim on this task.',
    remedy: 'Work on the claim you have (GET /v1/me/claims).',
  },
  already_contributed: {
    kind: 'conflict',
    summary: 'Your work on this task was already accepted; its other slots are for other members.',
    remedy: 'Pick another task.',
  },
  task_blocked: {
    kind: 'conflict',
    summary: 'A task this one depends on is not done yet.',
    remedy: 'Claim it once its dependencies are done; claims/next only offers tasks that are ready.',
  },
  no_claimable_task: {
    kind: 'conflict',
    summary:
      'No task of the project can be claimed by you now (all taken, blocked, done, or not matching your skills).',
    remedy: 'Try again later, or with other skills.',
  },
  claim_limit_reached: {
    kind: 'conflict',
    summary: 'You hold as many active claims as a member may.',
    remedy: 'Submit or release one of your claims first.',
  },
  claim_conflict: {
    kind: 'conflict',
    summary: 'Claims you made at the same moment kept taking precedence over this one.',
    remedy: 'Retry the request.',
  },
  claim_not_active: {
    kind: 'conflict',
    summary: 'The claim is no longer active (submitted, released, expired, revoked or decided).',
    remedy: 'Read the claim to see its status.',
  },
  claim_expired: {
    kind: 'conflict',
    summary: 'The lease on the claim has run out; work can no longer be submitted on it.',
    remedy: 'Claim the task again; extend leases in time with POST /v1/claims/{claimId}/extend.',
  },
  lease_limit_reached: {
    kind: 'conflict',
    summary: 'The lease is already at its longest allowed length.',
    remedy: 'Submit the work, or release the claim.',
  },
  claim_not_submitted: {
    kind: 'conflict',
    summary: 'Only submitted work can be reviewed, and this claim is in another state.',
    remedy: 'Read the claim; review it once the member has submitted.',
  },
  claimant_departed: {
    kind: 'conflict',
    summary: 'The member who submitted this work has left the circle, so it cannot go back to them for revision.',
    remedy: 'Accept or reject the work as it is.',
  },
  feedback_required: {
    kind: 'invalid',
    summary: 'A reject or revise decision needs feedback telling the member why.',
    remedy: 'Add `feedback`.',
  },

  // Contributions and settlement
  adjustment_below_zero: {
    kind: 'conflict',
    summary: "The adjustment would take the member's points in the project below zero.",
    remedy: 'Adjust by at most the points the member has.',
  },
  already_settled: {
    kind: 'conflict',
    summary: 'The project has already been settled, or its settlement is under way.',
    remedy: 'Read the existing settlement (GET /v1/settlements/{settlementId}).',
  },
  reviews_overdue: {
    kind: 'conflict',
    summary:
      'Submitted work in the project has passed its review deadline and is about to be accepted automatically; settling now would leave it out.',
    remedy:
      'Request the settlement again in a minute, once the automatic accepts are recorded (or review the work now).',
  },
  reviews_pending: {
    kind: 'conflict',
    summary:
      'Submitted work in the project is waiting for its review; settling now would end the project and revoke it unreviewed and unpaid.',
    remedy:
      'Review the waiting work (GET /v1/circles/{circleId}/review-queue), then request the settlement again; the settlement preview counts it as reviewsPending.',
  },

  // Check-in challenges
  invalid_challenge_dates: {
    kind: 'invalid',
    summary: 'The challenge would end before it starts.',
    remedy: 'Send an endsOn on or after startsOn.',
  },
  challenge_started: {
    kind: 'conflict',
    summary: 'The challenge has started: only its title and description can change now.',
    remedy: 'Change only the title or description, or create a new challenge.',
  },
  challenge_has_checkins: {
    kind: 'conflict',
    summary: 'Members have checked in, so the time zone and day start are fixed.',
    remedy: 'Keep the zone and day start as they are.',
  },
  challenge_not_started: {
    kind: 'conflict',
    summary: 'The challenge has not started yet in its time zone.',
    remedy: 'Check in from its first day on.',
  },
  challenge_ended: {
    kind: 'conflict',
    summary: 'The challenge has ended.',
    remedy: 'Join the next challenge of the circle.',
  },
  challenge_cancelled: {
    kind: 'conflict',
    summary: 'The challenge was cancelled.',
    remedy: 'Nothing can change in it any more.',
  },
  already_checked_in: {
    kind: 'conflict',
    summary: 'You already checked in for this day of the challenge.',
    remedy: 'Come back tomorrow (local time of the challenge).',
  },
  duplicate_content: {
    kind: 'conflict',
    summary: 'You already checked in with this content in this challenge.',
    remedy: 'Write something new.',
  },
  content_too_short: {
    kind: 'invalid',
    summary: 'The check-in is shorter than the challenge asks for.',
    remedy: 'Write at least the number of characters the challenge names.',
  },
  checkin_date_in_future: {
    kind: 'invalid',
    summary: "A make-up check-in names a day that has not come yet in the challenge's time zone.",
    remedy: 'Leave `date` out to check in for today; name only past days for a make-up.',
  },
  date_outside_challenge: {
    kind: 'conflict',
    summary: "The day is outside the challenge's dates.",
    remedy: 'Name a day between the first day of the challenge and today.',
  },
  date_before_joining: {
    kind: 'conflict',
    summary: 'The day is before you joined the circle: there is no missed day to make up.',
    remedy: 'Make up only days since you joined.',
  },
  makeup_window_passed: {
    kind: 'conflict',
    summary: 'The day is further back than make-ups may reach.',
    remedy: 'Make up only days within the window the challenge allows.',
  },
  no_makeups_left: {
    kind: 'conflict',
    summary: 'You have used all the make-up check-ins the challenge allows.',
    remedy: 'Check in on time from now on.',
  },

  // Webhooks
  invalid_webhook_url: {
    kind: 'invalid',
    summary: 'The webhook URL is not an absolute http or https URL, has no host, or carries credentials.',
    remedy: 'Send an absolute http(s) URL without user name or password; deliveries are signed instead.',
  },
  webhook_url_not_allowed: {
    kind: 'invalid',
    summary: 'The webhook URL points at a loopback, private, link-local or otherwise internal address.',
    remedy:
      'Use a publicly reachable address. Operators of closed networks may allow private targets with WEBHOOK_ALLOW_PRIVATE=true.',
  },
  unknown_event_type: {
    kind: 'invalid',
    summary: 'An event type in `events` is not one webhooks can receive.',
    remedy: 'Use the event types the documentation lists, or `*` for every type.',
  },
  webhook_disabled: {
    kind: 'conflict',
    summary: 'The webhook is disabled, so nothing can be redelivered through it.',
    remedy: 'Enable it with PATCH {"enabled": true}, then redeliver.',
  },
  delivery_in_progress: {
    kind: 'conflict',
    summary: 'This message is still being delivered or waits for its next retry.',
    remedy: 'Wait until its delivery has finished, then redeliver if it failed.',
  },

  // Idempotency, rate limits and availability
  invalid_idempotency_key: {
    kind: 'invalid',
    summary: 'The Idempotency-Key header is empty, too long or holds characters other than visible ASCII.',
    remedy: 'Send 1-255 visible ASCII characters, for example a UUID.',
  },
  idempotency_key_reused: {
    kind: 'unprocessable',
    summary: 'This Idempotency-Key was already used with a different request.',
    remedy: 'Use a new key for a new request; resend the identical request to get the first answer again.',
  },
  idempotency_request_in_progress: {
    kind: 'conflict',
    summary: 'A request with this Idempotency-Key is still being processed.',
    remedy: 'Retry shortly with the same key: you will get its answer.',
  },
  idempotency_response_lost: {
    kind: 'conflict',
    summary: 'The request with this Idempotency-Key was applied, but the server stopped before storing its answer.',
    remedy:
      'Do not send it again with a new key: read the resource (list or get it) to see what the request created or changed.',
  },
  rate_limited: {
    kind: 'rate_limited',
    summary: 'You have sent more requests than your budget allows in the current minute.',
    remedy: 'Wait the seconds given in the Retry-After header, then retry.',
  },
  write_conflict: {
    kind: 'unavailable',
    summary:
      'The request collided with another one changing the same records (a deadlock, or a serialization failure) and was rolled back: nothing was changed.',
    remedy: 'Send it again after the seconds given in Retry-After; with an Idempotency-Key, retrying a write is safe.',
  },
  service_unavailable: {
    kind: 'unavailable',
    summary: 'A service the request needs (the database or the queue store) is unreachable right now.',
    remedy: 'Retry after the seconds given in Retry-After; with an Idempotency-Key, retrying a write is safe.',
  },
  internal_error: {
    kind: 'http',
    status: 500,
    summary: 'Something went wrong on the service side; it has been logged.',
    remedy: 'Retry later; quote the x-request-id header when you report it.',
  },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes thrown with domain error kind K (the constructors in errors.ts accept only these). */
export type ErrorCodeOf<K extends ErrorKind> = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C]['kind'] extends K ? C : never;
}[ErrorCode];

/** What a `<what>_not_found` code names: notFound('task') answers task_not_found. */
export type NotFoundSubject = {
  [C in ErrorCodeOf<'not_found'>]: C extends `${infer W}_not_found` ? W : never;
}[ErrorCodeOf<'not_found'>];

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CODES, code);
