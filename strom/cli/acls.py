"""`strom acls add|list|remove`: what `kafka-acls.sh` does, through CreateAcls, DescribeAcls and DeleteAcls
(KIP-140; PREFIXED patterns and MATCH filters, KIP-290).

A resource is named with `--topic`, `--group`, `--transactional-id`, `--delegation-token`, `--user` or
`--cluster`; `--resource-pattern-type` is `literal` (the default for add), `prefixed`, and for list and
remove also `any` (the default there) or `match` (every ACL that applies to the named resource).
`add` takes `--allow-principal`/`--deny-principal` (repeatable), `--operation` (repeatable, Kafka's names:
Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs,
IdempotentWrite, CreateTokens, DescribeTokens, All) and `--host` (default `*`). `list` prints Kafka's
"Current ACLs for resource" blocks.
"""

from __future__ import annotations

from typing import Any

import click
from kio.static.primitive import i8

from strom.cli.common import ClientOptions, client_options, emit_json, fail, run
from strom.client.cluster import raise_for_error
from strom.security.acl import CLUSTER_NAME, PermissionType, from_camel_name
from strom.security.authorizer import AclOperation, PatternType, ResourceType

_PATTERNS = {"literal": PatternType.LITERAL, "prefixed": PatternType.PREFIXED, "any": PatternType.ANY,
             "match": PatternType.MATCH}  # fmt: skip


_RESOURCE_FLAGS = "--topic, --group, --transactional-id, --delegation-token, --user or --cluster"


def _resource_options(func: Any) -> Any:
    for option in (
        click.option("--topic", default=None, help="A topic (or prefix)."),
        click.option("--group", default=None, help="A consumer group (or prefix)."),
        click.option("--transactional-id", default=None, help="A transactional id (or prefix)."),
        click.option("--delegation-token", default=None, help="A delegation token id."),
        click.option("--user", "user_name", default=None, help="A user (for token ACLs)."),
        click.option("--cluster", is_flag=True, help="The cluster resource."),
        click.option(
            "--resource-pattern-type", "pattern", type=click.Choice(sorted(_PATTERNS)), default=None
        ),
    ):
        func = option(func)
    return func


def _resource(kw: dict[str, Any], *, required: bool) -> tuple[ResourceType, str | None]:
    given = [
        (rt, kw[key])
        for key, rt in (("topic", ResourceType.TOPIC), ("group", ResourceType.GROUP),
                        ("transactional_id", ResourceType.TRANSACTIONAL_ID),
                        ("delegation_token", ResourceType.DELEGATION_TOKEN), ("user_name", ResourceType.USER))
        if kw[key] is not None
    ]  # fmt: skip
    if kw["cluster"]:
        given.append((ResourceType.CLUSTER, CLUSTER_NAME))
    if len(given) > 1:
        fail(f"give one resource ({_RESOURCE_FLAGS})", 2)
    if not given:
        if required:
            fail(f"name a resource ({_RESOURCE_FLAGS})", 2)
        return ResourceType.ANY, None
    return given[0]


def _operation(name: str) -> AclOperation:
    op = from_camel_name(AclOperation, name)
    if op in (AclOperation.UNKNOWN, AclOperation.ANY):
        fail(f"unknown operation {name}", 2)
    return AclOperation(op)


def _describe(item: Any) -> dict[str, Any]:
    return {
        "principal": item.principal,
        "host": item.host,
        "operation": AclOperation(int(item.operation)).name,
        "permissionType": PermissionType(int(item.permission_type)).name,
    }


def _pattern_text(rt: int, name: str, pattern: int) -> str:
    kind, how = ResourceType(rt).name, PatternType(pattern).name
    return f"ResourcePattern(resourceType={kind}, name={name}, patternType={how})"


@click.group("acls")
def acls() -> None:
    """Add, list and remove ACLs (with authorizer.class.name set on the brokers)."""


@acls.command("add")
@_resource_options
@click.option("--allow-principal", multiple=True, help="Principal to allow, e.g. User:alice (repeatable).")
@click.option("--deny-principal", multiple=True, help="Principal to deny (repeatable).")
@click.option("--operation", multiple=True, required=True, help="Operation, e.g. Read (repeatable).")
@click.option("--host", default="*", show_default=True, help="Client address the ACL applies to.")
@client_options
def add(
    allow_principal: tuple[str, ...],
    deny_principal: tuple[str, ...],
    operation: tuple[str, ...],
    host: str,
    opts: ClientOptions,
    **kw: Any,
) -> None:
    """Create ACLs: each principal gets each operation on the resource."""
    from kio.schema.create_acls.v3.request import AclCreation, CreateAclsRequest

    rtype, name = _resource(kw, required=True)
    pattern = _PATTERNS[kw["pattern"] or "literal"]
    if pattern not in (PatternType.LITERAL, PatternType.PREFIXED):
        fail("add takes --resource-pattern-type literal or prefixed", 2)
    grants = [(p, PermissionType.ALLOW) for p in allow_principal] + [
        (p, PermissionType.DENY) for p in deny_principal
    ]
    if not grants:
        fail("give --allow-principal or --deny-principal", 2)
    creations = tuple(
        AclCreation(resource_type=i8(rtype), resource_name=str(name), resource_pattern_type=i8(pattern),
                    principal=principal, host=host, operation=i8(_operation(op)), permission_type=i8(perm))
        for principal, perm in grants
        for op in operation
    )  # fmt: skip

    async def go() -> None:
        async with opts.client() as client:
            response = await client.request_any(CreateAclsRequest(creations=creations))
        for result in response.results:
            raise_for_error(result.error_code, result.error_message, "create ACLs")

    run(go())
    if opts.output == "json":
        emit_json({"created": len(creations)})
    else:
        click.echo(f"Added {len(creations)} ACL(s) for resource {_pattern_text(rtype, str(name), pattern)}")


def _filter(kw: dict[str, Any], principal: str | None, operation: str | None) -> dict[str, Any]:
    rtype, name = _resource(kw, required=False)
    return dict(
        resource_type_filter=i8(rtype),
        resource_name_filter=name,
        pattern_type_filter=i8(_PATTERNS[kw["pattern"] or "any"]),
        principal_filter=principal,
        host_filter=None,
        operation=i8(_operation(operation) if operation else AclOperation.ANY),
        permission_type=i8(PermissionType.ANY),
    )


@acls.command("list")
@_resource_options
@click.option("--principal", default=None, help="Only ACLs of this principal.")
@client_options
def list_acls(principal: str | None, opts: ClientOptions, **kw: Any) -> None:
    """Show ACLs (of one resource, or all)."""
    from kio.schema.describe_acls.v3.request import DescribeAclsRequest

    request = DescribeAclsRequest(**_filter(kw, principal, None))

    async def go() -> Any:
        async with opts.client() as client:
            response = await client.request_any(request)
        raise_for_error(response.error_code, response.error_message, "describe ACLs")
        return response.resources

    resources = run(go())
    if opts.output == "json":
        emit_json([{"resourceType": ResourceType(int(r.resource_type)).name, "name": r.resource_name,
                    "patternType": PatternType(int(r.pattern_type)).name,
                    "acls": [_describe(a) for a in r.acls]} for r in resources])  # fmt: skip
        return
    for r in resources:
        click.echo(
            f"Current ACLs for resource `{_pattern_text(r.resource_type, r.resource_name, r.pattern_type)}`: "
        )
        for a in r.acls:
            d = _describe(a)
            click.echo(f" \t(principal={d['principal']}, host={d['host']}, operation={d['operation']}, "
                       f"permissionType={d['permissionType']})")  # fmt: skip
        click.echo("")


@acls.command("remove")
@_resource_options
@click.option("--principal", default=None, help="Only ACLs of this principal.")
@click.option("--operation", default=None, help="Only ACLs of this operation.")
@client_options
def remove(principal: str | None, operation: str | None, opts: ClientOptions, **kw: Any) -> None:
    """Delete the ACLs that match (all of a resource's ACLs unless narrowed)."""
    from kio.schema.delete_acls.v3.request import DeleteAclsFilter, DeleteAclsRequest

    if _resource(kw, required=True)[1] is None:
        fail("name a resource", 2)
    request = DeleteAclsRequest(filters=(DeleteAclsFilter(**_filter(kw, principal, operation)),))

    async def go() -> int:
        async with opts.client() as client:
            response = await client.request_any(request)
        result = response.filter_results[0]
        raise_for_error(result.error_code, result.error_message, "delete ACLs")
        return len(result.matching_acls)

    removed = run(go())
    if opts.output == "json":
        emit_json({"removed": removed})
    else:
        click.echo(f"Removed {removed} ACL(s)")
