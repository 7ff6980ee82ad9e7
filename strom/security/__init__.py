"""Security: listeners' TLS contexts (tls.py), principals and how a client certificate names one
(principal.py, ssl_principal.py), and the authorizer every handler asks through its request context
(authorizer.py; the ACL authorizer in acl.py, acl_authorizer.py, acl_store.py, zk_acl_store.py). SASL
mechanisms and quotas are to come here, one module each.

Handlers never parse credentials: a connection learns its principal once (from the TLS handshake today),
and `RequestContext.authorize(...)` answers whether that principal may do something.
"""
