"""What a Salesforce declaration refers to before any client is needed (loading the
definitions reads these; the client and its libraries load only when a sync runs)."""

DEFAULT_API_VERSION = "62.0"
# The cursor an incremental stream uses when it names none: the first of these the object has.
CURSOR_FALLBACKS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
