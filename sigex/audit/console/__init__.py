"""The auditor's console: a web page over the access log (``sigex audit serve``).

:class:`~sigex.audit.console.service.AuditConsole` answers the console's
questions without any HTTP (overview, search, a record with its proof, log
health, usage reports, the article 15 report) and writes every one of them to
the access log first (:mod:`sigex.audit.console.consultations`);
:mod:`sigex.audit.console.app` puts it behind Starlette with server-side
templates, and :mod:`sigex.audit.console.server` serves that with uvicorn behind
mutual TLS. The inclusion proof of a record is checked in the browser
(``static/proof.js``), against a key the auditor pinned, not by this server.
"""
