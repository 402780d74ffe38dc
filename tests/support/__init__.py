"""Helpers shared by the test tiers (unit, functional, e2e, infra, conformance).

Test modules and conftests import helpers from here, never from one another: a ``conftest.py``
holds only fixtures (which may use these helpers), and no test imports another test module
(tests/unit/test_test_layout.py checks both).

* :mod:`tests.support.messages`: ``make_job``, ``make_result``, ``body`` (contract messages);
* :mod:`tests.support.polling`: ``eventually``, ``wait_for_execution``, ``visible``;
* :mod:`tests.support.aws`: ``loopback_client``, ``embedded_moto`` (in-process moto as the
  embedded stack runs it), ``start``, ``receive_all``, ``depth``;
* :mod:`tests.support.worker`: ``settings``, ``running`` (a worker loop in a thread);
* :mod:`tests.support.stack`: ``WorkerFactory``, ``e2e_settings``, ``assert_queues_empty``
  (the embedded stack with real worker processes);
* :mod:`tests.support.terraform`: paths under infra/ and the python-hcl2 readers;
* :mod:`tests.support.conformance`: ``Target`` and the state machine / queue helpers of the
  conformance suite.
"""
