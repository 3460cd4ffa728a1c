// A message the app asked to send that the server has not confirmed yet. It lives in the outbox
// (and in the state store, so an app restart resumes it) until its SendResp arrives.
export interface PendingSend {
  clientMsgId: string;
  convId: string; // empty when toUid names the peer of a single chat
  toUid: string;
  type: number;
  body: Uint8Array;
  refSeq: number; // RECALL (6) and EDIT (7): the seq they change in convId
  createdMs: number; // wall clock
  deadlineMs: number; // wall clock: report failed after this; 0: never
}
