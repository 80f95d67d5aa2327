#include <sqlite3.h>

/* sqlite3_db_config is variadic, which Swift cannot call: one fixed-signature wrapper per option used. */

/* Whether triggers fire on this connection (SQLITE_DBCONFIG_ENABLE_TRIGGER); returns an SQLite code. */
static inline int hl_sqlite3_enable_triggers(sqlite3 *db, int enabled) {
    int now = -1;
    return sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, enabled, &now);
}

/* SQLITE_DBCONFIG_DEFENSIVE: no writes to the schema or shadow tables through SQL on this connection. */
static inline int hl_sqlite3_defensive(sqlite3 *db, int enabled) {
    int now = -1;
    return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, enabled, &now);
}
