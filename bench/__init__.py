"""The load, fault and benchmark harness (not shipped in the ``cartguard`` wheel).

* :mod:`.services` - the local PostgreSQL / Redis / RabbitMQ: reachability, databases,
  queues, and the restart/stop switches the fault tests pull;
* :mod:`.launcher` - ``python -m bench.launcher``: N Rasa + N action servers on free
  ports, bounded in time, all stopped on exit;
* :mod:`.driver` - concurrent shoppers over socket.io (polling), with latencies;
* :mod:`.checks` - reading the tracker database back: nothing lost, doubled or reordered;
* :mod:`.scenarios` - the load and fault scenarios shared by ``tests/scale`` and ``make soak``;
* ``soak.py``, ``stack.py``, ``pii.py`` - the ``make soak`` / ``make bench`` entry points.

The production tracker store that ``endpoints.scale.yml`` names lives in
``cartguard.stores.resilient``.
"""
