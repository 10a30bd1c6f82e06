"""``vigil serve vigil.yaml``: watch several cameras at once as a service (issue 15).

Each camera is watched with the rule of ``vigil watch`` on threads of its own (:mod:`.camera`);
events go to a database (:mod:`.store`, SQLite or PostgreSQL), to MQTT in Frigate's shapes with Home
Assistant discovery (:mod:`.mqtt`), to an optional Frigate (:mod:`.frigate`), and to a web page and
JSON API (:mod:`.http`); snapshots and clips live on disk with a retention period (:mod:`.media`).
The configuration is :mod:`.config`; :mod:`.service` puts the parts together. Reviewed false alarms
become normal footage for ``vigil refit`` (:func:`vigil.runs.refit`).

Nothing heavy is imported here: ``vigil --help`` stays light.
"""


def serve(config_path: str) -> int:
    from vigil.serve.service import serve as run

    return run(config_path)
