/** SQL injection strings the account tests throw at every field. */

/** Strings that break a query built by concatenation, in every dialect we run. */
export const INJECTIONS: readonly string[] = [
  "'; DROP TABLE accounts; --",
  '" OR "1"="1',
  "' OR '1'='1",
  "x'); DELETE FROM refresh_tokens; --",
  "\\'; SELECT pg_sleep(5); --",
  "$1 $2 ? ?1 :name @p",
  "Robert'); DROP TABLE schema_migrations;--",
  "\u0000nul",
  "😀' || (SELECT password_hash FROM accounts LIMIT 1) || '",
];
