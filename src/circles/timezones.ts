// A circle's time zone is an IANA name ("Asia/Shanghai", "UTC"): local days in health figures
// follow its daylight-saving rules. Offsets ("+08:00") and abbreviations ("CST") are refused:
// they carry no rules, and abbreviations are ambiguous.

const IANA_NAME = /^(?:UTC|[A-Za-z][A-Za-z_-]*(?:\/[A-Za-z0-9][A-Za-z0-9_+-]*)+)$/;

/** Whether `name` looks like an IANA zone and this runtime knows it. */
export function isIanaTimeZone(name: string): boolean {
  if (!IANA_NAME.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
