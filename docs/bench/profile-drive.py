"""Sequential GraphQL mutations against a running server, for instruction and system-call counts.

    python3 docs/bench/profile-drive.py HOST PORT N createTask|updateTask [--callgrind]

Creates a project, 60 tasks and 30 updates (warm-up), then sends N mutations one after the other on
one keep-alive connection. With --callgrind the server runs under `valgrind --tool=callgrind`: its
counters are zeroed after the warm-up and dumped after the N requests (`callgrind_control`).
See profile-2026-12-07-server.md for how it was used.
"""

import http.client
import json
import subprocess
import sys
import time

host, port, n, mutation = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
callgrind = "--callgrind" in sys.argv[5:]
connection = http.client.HTTPConnection(host, port, timeout=600)
HEADERS = {"Content-Type": "application/json", "X-User": "bench", "X-App": "load"}


def send(query, variables):
    connection.request("POST", "/graphql", json.dumps({"query": query, "variables": variables}), HEADERS)
    reply = json.loads(connection.getresponse().read())
    if "errors" in reply:
        raise SystemExit(reply)
    return reply["data"]


project = send("mutation($n: String!) { createProject(input: {name: $n}) { id } }", {"n": "profile"})
project = project["createProject"]["id"]
ids = []


def create(i):
    query = "mutation($p: ID!, $t: String!, $pr: Int!) { createTask(input: {projectId: $p, title: $t, priority: $pr}) { id } }"
    return send(query, {"p": project, "t": f"load {i}", "pr": i % 5})["createTask"]["id"]


def update(i):
    query = "mutation($id: ID!, $t: String!, $pr: Int!) { updateTask(id: $id, input: {title: $t, priority: $pr}) { id } }"
    send(query, {"id": ids[i % len(ids)], "t": f"upd {i}", "pr": i % 6})


for i in range(60):
    ids.append(create(i))
for i in range(30):
    update(i)
if callgrind:
    subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
started = time.time()
for i in range(n):
    (create if mutation == "createTask" else update)(i)
if callgrind:
    subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
print(f"{n} {mutation} in {time.time() - started:.2f} s")
