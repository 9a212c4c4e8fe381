"""Running Cartguard as several replicas on PostgreSQL, Redis and RabbitMQ, and proving it holds.

* :mod:`.stores` - the tracker store used by ``endpoints.scale.yml``: the PII-stripping store,
  made to ride out a short database outage instead of dropping a turn;
* :mod:`.services` - the local PostgreSQL / Redis / RabbitMQ: reachability, databases,
  queues, and the restart/stop switches the fault tests pull;
* :mod:`.launcher` - ``python -m cartguard.scale.launcher``: N Rasa + N action servers on free
  ports, bounded in time, all stopped on exit;
* :mod:`.driver` - concurrent shoppers over socket.io (polling), with latencies;
* :mod:`.checks` - reading the tracker database back: nothing lost, doubled or reordered.
"""
