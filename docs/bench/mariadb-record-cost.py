#!/usr/bin/env python3
"""What a history record's statement costs MariaDB, form by form (profile-2026-12-07-mariadb.md).

Writes one SQL script per form into a folder: each prepares the assignation's reservation and one form
of the record's insert with server-side PREPARE (parsed once, as sqlx's cached statements are), then
runs N creates in one transaction (EXECUTE with user variables; a round trip each from the mysql
client) and rolls back. Time each script against a database migrated by `chronicle migrate`:

    python3 docs/bench/mariadb-record-cost.py /tmp/forms 3000
    for f in R H1 H7 H3 H2 H6; do /usr/bin/time -f "$f %e s" mysql -uroot -h127.0.0.1 scratch < /tmp/forms/$f.sql > /dev/null; done

R is the reservation alone; the others add the record: H1 as the writer sends it (`INSERT … SELECT`
joining the latest record by `(object, MAX(version))`), H7 as `INSERT … SELECT` from the assignation
row only (no history read), H3 as `INSERT … VALUES`, H2 with scalar subqueries for version, hash and
scope, H6 joined with `ORDER BY version DESC LIMIT 1`. Differences between scripts, divided by N, are
the client-side cost per create of what one form does more than another.
"""

import json
import os
import sys
import uuid

RESERVE = (
    "INSERT INTO assignation (id, actor, app, started_at, change_count, parent_id, root_id, "
    "on_behalf_of, args_hash, args_hash_alg) VALUES (?, 'bench', NULL, NOW(6), 1, NULL, ?, NULL, "
    "NULL, NULL) ON DUPLICATE KEY UPDATE change_count = change_count + 1"
)
COLUMNS = (
    "INSERT INTO task_history (id, object_id, version, kind, at, actor, app, assignation_id, step, "
    "reason, snapshot, hash, scope_id, trace_id, span_id)"
)
ALLOWED = (
    "WHERE a.id = ? AND (a.actor <=> 'bench' OR a.on_behalf_of = NULL) AND a.reverted_by IS NULL "
    "AND (NULL IS NULL OR a.parent_id = NULL)"
)
FORMS = {
    "H1": (
        f"""{COLUMNS} SELECT ?, ?, COALESCE(p.version, 0) + 1, 'CREATE', NOW(6), 'bench', NULL, a.id,
 a.change_count - 1, NULL, ?, SHA2(CONCAT(COALESCE(p.hash, ''), '|', COALESCE(p.version, 0) + 1, '|',
 a.change_count - 1, '|', 'abc'), 256), COALESCE(p.scope_id, 'proj'), NULL, NULL
 FROM assignation AS a LEFT JOIN task_history AS p ON p.object_id = ?
   AND p.version = (SELECT MAX(version) FROM task_history WHERE object_id = ?) {ALLOWED}""",
        "@hid, @oid, @snap, @oid, @oid, @aid",
    ),
    "H7": (
        f"""{COLUMNS} SELECT ?, ?, 1, 'CREATE', NOW(6), 'bench', NULL, a.id, a.change_count - 1, NULL, ?,
 SHA2(CONCAT('', '|', 1, '|', a.change_count - 1, '|', 'abc'), 256), 'proj', NULL, NULL
 FROM assignation AS a {ALLOWED}""",
        "@hid, @oid, @snap, @aid",
    ),
    "H3": (
        f"""{COLUMNS} VALUES (?, ?, 1, 'CREATE', NOW(6), 'bench', NULL, ?, 0, NULL, ?, SHA2('x', 256),
 'proj', NULL, NULL)""",
        "@hid, @oid, @aid, @snap",
    ),
    "H2": (
        f"""{COLUMNS} SELECT ?, ?, COALESCE((SELECT MAX(version) FROM task_history WHERE object_id = ?), 0) + 1,
 'CREATE', NOW(6), 'bench', NULL, a.id, a.change_count - 1, NULL, ?,
 SHA2(CONCAT(COALESCE((SELECT hash FROM task_history WHERE object_id = ? ORDER BY version DESC LIMIT 1),
 ''), '|', 1, '|', a.change_count - 1, '|', 'abc'), 256),
 COALESCE((SELECT scope_id FROM task_history WHERE object_id = ? ORDER BY version DESC LIMIT 1), 'proj'),
 NULL, NULL FROM assignation AS a {ALLOWED}""",
        "@hid, @oid, @oid, @snap, @oid, @oid, @aid",
    ),
    "H6": (
        f"""{COLUMNS} SELECT ?, ?, COALESCE(p.version, 0) + 1, 'CREATE', NOW(6), 'bench', NULL, a.id,
 a.change_count - 1, NULL, ?, SHA2(CONCAT(COALESCE(p.hash, ''), '|', COALESCE(p.version, 0) + 1, '|',
 a.change_count - 1, '|', 'abc'), 256), COALESCE(p.scope_id, 'proj'), NULL, NULL
 FROM assignation AS a LEFT JOIN task_history AS p ON p.object_id = ? {ALLOWED}
 ORDER BY p.version DESC LIMIT 1""",
        "@hid, @oid, @snap, @oid, @aid",
    ),
}
SNAPSHOT = json.dumps(
    {
        "id": "x",
        "title": "task 1-1",
        "priority": 1,
        "status": "TODO",
        "description": None,
        "due_date": None,
        "project_id": "p",
        "created_at": "2026-12-07T07:00:00.000000Z",
        "updated_at": "2026-12-07T07:00:00.000000Z",
    }
)


def literal(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def script(record, n):
    lines = [
        "SET autocommit = 0;",
        f"PREPARE r FROM {literal(RESERVE)};",
        f"SET @snap = {literal(SNAPSHOT)};",
    ]
    if record:
        lines.append(f"PREPARE h FROM {literal(record[0])};")
    for _ in range(n):
        aid, oid = uuid.uuid4(), uuid.uuid4()
        lines.append(f"SET @aid = '{aid}', @oid = '{oid}', @hid = X'{uuid.uuid4().hex}';")
        lines.append("EXECUTE r USING @aid, @aid;")
        if record:
            lines.append(f"EXECUTE h USING {record[1]};")
    lines.append("ROLLBACK;")
    return "\n".join(lines) + "\n"


def main():
    folder, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    os.makedirs(folder, exist_ok=True)
    for name, record in [("R", None)] + list(FORMS.items()):
        with open(os.path.join(folder, name + ".sql"), "w") as out:
            out.write(script(record, n))


if __name__ == "__main__":
    main()
