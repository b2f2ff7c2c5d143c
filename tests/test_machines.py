"""The status's machines (#25): the list built from ray.nodes() and Serve's replica places, the warning when a
machine goes, the text `gradio-serve status` and the launcher show, and the launcher's "Let other machines
join" switch. Fast: fake nodes, offscreen Qt."""

from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from serving.cluster import joining
from serving.cluster.machines import MachineWatch, machines_list
from serving.core import paths
from serving.core.config import LaunchConfig
from serving.core.machines_text import machines_lines
from serving.core.protocol import StatusEvent, StatusRecord, SupervisorRecord

HEAD = {"NodeID": "aaa", "Alive": True, "NodeManagerAddress": "10.77.1.1",
        "Resources": {"CPU": 1.0, "memory": 4 * 2**30, "node:10.77.1.1": 1.0, "node:__internal_head__": 1.0}}
OTHER = {"NodeID": "bbb", "Alive": True, "NodeManagerAddress": "10.77.1.2",
         "Resources": {"CPU": 2.0, "GPU": 1.0, "memory": 8 * 2**30, "node:10.77.1.2": 1.0}}
DEAD = {**OTHER, "NodeID": "ccc", "Alive": False}
PLACES = [{"deployment": "app", "replica_id": "r1", "node_id": "aaa", "node_ip": "10.77.1.1", "state": "RUNNING"},
          {"deployment": "app", "replica_id": "r2", "node_id": "bbb", "node_ip": "10.77.1.2", "state": "STARTING"},
          {"deployment": "GradioIngress", "replica_id": "r3", "node_id": None, "node_ip": "10.77.1.2",
           "state": "RUNNING"}]


class Said:
    def __init__(self):
        self.lines = []

    def emit(self, event, **fields):
        self.lines.append((fields["level"], fields["message"]))


def test_each_live_machine_with_the_replicas_on_it_head_first():
    machines = machines_list([OTHER, DEAD, HEAD], PLACES)
    assert [m["address"] for m in machines] == ["10.77.1.1", "10.77.1.2"]
    head, other = machines
    assert head["head"] and not other["head"]
    assert (other["cpus"], other["gpus"], other["memory_bytes"]) == (2.0, 1.0, 8 * 2**30)
    assert [r["replica_id"] for r in head["replicas"]] == ["r1"]
    assert [(r["deployment"], r["replica_id"], r["state"]) for r in other["replicas"]] == [
        ("app", "r2", "STARTING"), ("GradioIngress", "r3", "RUNNING")]  # by IP when Serve has no node id yet
    event = StatusEvent(app_status="RUNNING", machines=machines)  # the wire model takes it as it is
    assert event.machines[1].replicas[0].deployment == "app"


def test_a_machine_that_goes_is_a_warning_and_one_that_comes_a_line(monkeypatch):
    said, watch = Said(), MachineWatch()
    nodes = [[HEAD], [HEAD, OTHER], [HEAD, {**OTHER, "Alive": False}]]
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(nodes=lambda: nodes.pop(0)))
    watch.placements[:] = PLACES
    assert [m["address"] for m in watch.poll(said, now=0.0)] == ["10.77.1.1"] and said.lines == []
    assert len(watch.poll(said, now=1.0)) == 1  # not read again so soon: one GCS call every few seconds
    assert [m["address"] for m in watch.poll(said, now=2.0)] == ["10.77.1.1", "10.77.1.2"]
    assert said.lines == [("info", "machine 10.77.1.2 joined: 2 CPUs, 1 GPUs, 8.0 GB of memory")]
    assert [m["address"] for m in watch.poll(said, now=4.0)] == ["10.77.1.1"]
    assert said.lines[-1] == ("warning", "machine 10.77.1.2 left or died: its replicas start again where there is room")


def test_the_machines_as_text_only_when_there_are_several():
    event = StatusEvent(app_status="RUNNING", deployments=[{"name": "app", "label": "demo · gr.Blocks",
                                                            "status": "HEALTHY"}],
                        machines=machines_list([HEAD, OTHER], PLACES[:2]))
    lines = machines_lines(event.machines, event.deployments)
    assert lines == ["10.77.1.1 (head): 1 CPU, 0 GPUs, 4.0 GB; demo · gr.Blocks ×1",
                     "10.77.1.2: 2 CPUs, 1 GPU, 8.0 GB; demo · gr.Blocks ×1"]
    assert machines_lines(event.machines[:1], event.deployments) == []
    joins = machines_lines(event.machines[:1], [], "gradio-serve join 10.77.1.1:6379 --token-file X", "/s/cluster-token")
    assert joins == [("another machine joins with `gradio-serve join 10.77.1.1:6379 --token-file X` "
                      "(copy /s/cluster-token there first: it is secret)")]


def test_old_records_read_without_machines_and_the_join_fields():
    assert StatusRecord.model_validate({"app_status": "RUNNING", "deployments": []}).machines == []
    assert SupervisorRecord.model_validate({"pid": 1}).join_command is None
    assert joining.record_fields(None) == {}
    fields = joining.record_fields("10.77.1.1:6379")
    assert fields["join_command"].startswith("gradio-serve join 10.77.1.1:6379 --token-file ")
    assert fields["token_file"].endswith("cluster-token")


def test_a_machine_that_goes_is_signalled_once_and_a_stop_is_not_a_leaving(qtbot):
    from launcher.status_panel import StatusAndLog

    panel = StatusAndLog()
    qtbot.addWidget(panel)
    table, went = panel.status_table, []
    table.machines.went.connect(went.append)
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD, OTHER], PLACES)))
    table.show_status(StatusEvent(app_status="RUNNING"))  # a status without the machines read
    assert went == []
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD], PLACES)))
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD], PLACES)))
    assert went == ["10.77.1.2"]
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD, OTHER], PLACES)))
    table.clear_status()  # the app stopped
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD], PLACES)))
    assert went == ["10.77.1.2"]


@pytest.mark.usefixtures("launcher_env")
def test_the_status_panel_shows_the_machines_and_the_join_command(qtbot):
    from launcher.status_panel import StatusAndLog

    panel = StatusAndLog()
    qtbot.addWidget(panel)
    table, label = panel.status_table, panel.status_table.machines
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD], PLACES)))
    assert label.isHidden() and label.lines == []  # one machine and no joining: nothing to say
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD, OTHER], PLACES)))
    assert not label.isHidden() and label.lines[1].startswith("10.77.1.2: 2 CPUs, 1 GPU") and "Machines" in label.text()
    paths.write_json_atomic(paths.supervisor_record(), SupervisorRecord(
        pid=os.getpid(), **joining.record_fields("10.77.1.1:6379")).as_json())
    table.show_status(StatusEvent(app_status="RUNNING", machines=machines_list([HEAD], PLACES)))
    assert not label.isHidden() and label.lines[0].startswith("another machine joins with `gradio-serve join 10.77.1.1")
    table.clear_status()
    assert label.isHidden()


@pytest.mark.usefixtures("launcher_env")
def test_the_join_switch_sets_the_join_address(qtbot, monkeypatch):
    from launcher import join_row
    from launcher.config_form import ConfigForm

    monkeypatch.setattr(join_row, "lan_addresses", lambda: ["192.168.1.10", "10.0.0.5"])
    form = ConfigForm(LaunchConfig.from_dict({}), [])
    qtbot.addWidget(form)
    row = form.join_row
    assert form.current_config().cluster.join_address is None and not row.address.isEnabled()
    assert [row.address.itemText(i) for i in range(row.address.count())] == ["192.168.1.10", "10.0.0.5"]
    edits = []
    form.edited.connect(lambda: edits.append(1))
    row.box.setChecked(True)
    assert edits and row.address.isEnabled()
    assert form.current_config().cluster.join_address == "192.168.1.10:6379"
    row.address.setCurrentText("10.0.0.5:7000")
    assert form.current_config().cluster.join_address == "10.0.0.5:7000"
    form.apply_config(LaunchConfig.from_dict({"cluster": {"join_address": "10.0.0.5"}}))
    assert row.box.isChecked() and row.address.currentText() == "10.0.0.5:6379"
    form.cluster_box.setChecked(True)  # someone else's cluster: machines join that one instead
    assert not row.box.isEnabled() and form.config_dict()["cluster"]["join_address"] is None
    form.apply_config(LaunchConfig.from_dict({}))
    assert not row.box.isChecked() and form.current_config().cluster.join_address is None


def test_lan_addresses_leave_out_loopback():
    from launcher.join_row import lan_addresses

    assert all(not a.startswith("127.") and ":" not in a for a in lan_addresses())
