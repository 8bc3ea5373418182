"""A domain's cloud-init seed volumes on a libvirt host: made and written (``virStorageVolUpload``, through a libvirt
stream, so a remote host works as a local one), and deleted. Names and the CD-ROM are providers/libvirt/cidata.py's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from virtplane.providers import nocloud
from virtplane.providers.libvirt import cidata, client
from virtplane.specs import CloudInitSpec

CHUNK = 256 * 1024


def write(conn: Any, vm: str, pool_name: str, volume_name: str, spec: CloudInitSpec) -> None:
    """The seed volume holding the NoCloud image of ``spec``: made when missing, and written every time (a volume left
    by an interrupted apply may hold part of it). Its name holds the documents' digest, so what it holds is fixed."""
    image = nocloud.iso(spec.documents)
    what = f"write the cloud-init seed volume {volume_name} of VM {vm}"
    pool = client.call(f"find storage pool {pool_name} for VM {vm}", conn.storagePoolLookupByName, pool_name)
    volume = client.call(f"look for volume {volume_name}", pool.storageVolLookupByName, volume_name,
                         tolerate=[client.NO_STORAGE_VOL])
    if volume is not None and volume.info()[1] != len(image):
        client.call(what, volume.delete, 0, tolerate=[client.NO_STORAGE_VOL])
        volume = None
    if volume is None:
        xml = ET.Element("volume")
        ET.SubElement(xml, "name").text = volume_name
        ET.SubElement(xml, "capacity", {"unit": "bytes"}).text = str(len(image))
        ET.SubElement(xml, "allocation", {"unit": "bytes"}).text = "0"
        ET.SubElement(ET.SubElement(xml, "target"), "format", {"type": "raw"})
        volume = client.call(what, pool.createXML, ET.tostring(xml, encoding="unicode"), 0)
    stream = conn.newStream(0)
    try:
        client.call(what, volume.upload, stream, 0, len(image), 0)
        view = memoryview(image)
        while view:
            sent = client.call(what, stream.send, bytes(view[:CHUNK]))
            view = view[int(sent or 0):]
        client.call(what, stream.finish)
    except BaseException:
        stream.abort()
        raise


def delete_others(conn: Any, vm: str, pool_name: str, domain: str, uuid: str, keep: str | None = None) -> None:
    """Every seed volume of this domain in the pool but ``keep``: the ones it held before, and any an interrupted apply
    made and never attached."""
    pool = client.call(f"find storage pool {pool_name}", conn.storagePoolLookupByName, pool_name,
                       tolerate=[client.NO_STORAGE_POOL])
    if pool is None:
        return
    for volume in client.call(f"list the volumes of pool {pool_name}", pool.listAllVolumes, 0) or []:
        if volume.name() != keep and cidata.ours(volume.name(), domain, uuid):
            client.call(f"delete the cloud-init seed volume {volume.name()} of VM {vm}", volume.delete, 0,
                        tolerate=[client.NO_STORAGE_VOL])
