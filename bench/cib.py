#!/usr/bin/env python3
"""Pacemaker CIB for the scheduler benchmark: R Dummy resources (monitor 10s,
migration-threshold 3) on N online nodes, fencing off, in steady state: resource i started
on node (i mod N) + 1 and probed "not running" everywhere else, exactly the cluster
crates/warden-engine/benches/schedule.rs builds. The status entries copy what crm_simulate
itself records (the digests are those of a parameterless Dummy).

  cib.py R N > steady.xml
"""
import sys


START_DIGEST = "f2317cad3d54cec5d7d7aa7d0bf35cf8"
MONITOR_DIGEST = "4811cef7f7f94e3a35a70be7916cb2fd"
KEY = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"


def op(rsc: str, key: str, name: str, rc: int, interval: int, call: int, digest: str) -> str:
    return (
        f'<lrm_rsc_op id="{rsc}_{key}" operation_key="{rsc}_{name}_{interval}" operation="{name}" '
        f'crm-debug-origin="crm_simulate" crm_feature_set="3.16.1" '
        f'transition-key="{call}:-1:{rc}:{KEY}" transition-magic="0:{rc};{call}:-1:{rc}:{KEY}" '
        f'exit-reason="" call-id="{call}" rc-code="{rc}" op-status="0" interval="{interval}" '
        f'last-rc-change="1767225600" exec-time="0" queue-time="0" op-digest="{digest}"/>'
    )


def cib(resources: int, nodes: int) -> str:
    out = [
        '<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" '
        'num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">',
        '<configuration><crm_config><cluster_property_set id="opts">',
        '<nvpair id="opt-stonith" name="stonith-enabled" value="false"/>',
        "</cluster_property_set></crm_config><nodes>",
    ]
    out += [f'<node id="{i}" uname="node{i}"/>' for i in range(1, nodes + 1)]
    out.append("</nodes><resources>")
    for r in range(resources):
        out.append(
            f'<primitive id="r{r}" class="ocf" provider="heartbeat" type="Dummy">'
            f'<meta_attributes id="r{r}-meta"><nvpair id="r{r}-mt" name="migration-threshold" value="3"/>'
            f'</meta_attributes><operations><op id="r{r}-mon" name="monitor" interval="10s"/>'
            "</operations></primitive>"
        )
    out.append("</resources><constraints/></configuration><status>")
    for n in range(1, nodes + 1):
        out.append(
            f'<node_state id="{n}" uname="node{n}" in_ccm="true" crmd="online" join="member" '
            f'expected="member" crm-debug-origin="crm_simulate"><lrm id="{n}"><lrm_resources>'
        )
        for r in range(resources):
            rsc = f"r{r}"
            out.append(f'<lrm_resource id="{rsc}" class="ocf" provider="heartbeat" type="Dummy">')
            if r % nodes == n - 1:
                out.append(op(rsc, "last_0", "start", 0, 0, 2, START_DIGEST))
                out.append(op(rsc, "monitor_10000", "monitor", 0, 10000, 3, MONITOR_DIGEST))
            else:
                out.append(op(rsc, "last_0", "monitor", 7, 0, 1, START_DIGEST))
            out.append("</lrm_resource>")
        out.append("</lrm_resources></lrm></node_state>")
    out.append("</status></cib>")
    return "\n".join(out)


if __name__ == "__main__":
    print(cib(int(sys.argv[1]), int(sys.argv[2])))
