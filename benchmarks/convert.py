"""labelme project to VOC and COCO: the studio against labelme itself, on the same files in one run.

A synthetic labelme project (``tests/datasets/synth.py``, with labels.txt) is converted four ways, each in
its own process so that peak memory is that process's alone (``os.wait4`` rusage of the child):

- studio VOC / COCO: the studio's labelme import into the canonical form, then ``export_voc`` /
  ``export_coco``, timed together (the output also gives the import's share).
- labelme VOC / COCO: a reference converter calling the ``labelme`` package's own functions in the order
  ``examples/instance_segmentation/labelme2voc.py`` and ``labelme2coco.py`` call them (``--noviz``; the
  ``.npy`` copies labelme2voc also writes are skipped, which only flatters labelme).

Then the outputs are compared: class indices (class_names.txt, COCO categories) and mask pixels.

    .venv/bin/pip install labelme    # benchmark only (GPL-3.0; not a studio dependency)
    .venv/bin/python benchmarks/convert.py [--images 300] [--width 640 --height 480] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLASSES = ["circle", "square", "triangle"]
LABELS_TXT = ["__ignore__", "_background_", *CLASSES]


# ----------------------------------------------------------------------------------- studio (child)


def studio_import(src: Path, ds_dir: Path) -> Any:
    """The studio's labelme import (what an upload runs), landing as ``annotations.json``."""
    from backend.datasets.canonical import ImportReport
    from backend.datasets.formats import parse_upload

    report = ImportReport()
    ds = parse_upload(src, "labelme", ds_dir, report)
    if report.errors:
        raise SystemExit(f"import failed: {report.errors[0].message}")
    return ds


def run_studio(fmt: str, src: Path, out: Path, ds_dir: Path) -> float:
    """Import and export; returns the seconds spent importing."""
    from backend.datasets.export import export_coco, export_voc

    t0 = time.perf_counter()
    ds = studio_import(src, ds_dir)
    ds.save(ds_dir)  # an import lands as annotations.json; the export then reads the object in hand
    import_s = time.perf_counter() - t0
    (export_voc if fmt == "voc" else export_coco)(ds, ds_dir, out)
    return import_s


# ---------------------------------------------------------------------------------- labelme (child)


def read_class_ids(labels: Path) -> tuple[list[str], dict[str, int]]:
    """labels.txt as labelme2voc reads it: line i is class i - 1 (``__ignore__`` is -1)."""
    names: list[str] = []
    ids: dict[str, int] = {}
    for i, line in enumerate(labels.read_text().splitlines()):
        ids[line.strip()] = i - 1
        if i > 0:
            names.append(line.strip())
    return names, ids


def label_file(path: str) -> tuple[Any, bytes]:
    import labelme

    lf = labelme.LabelFile(filename=path)
    data = lf.image_data if hasattr(lf, "image_data") else lf.imageData
    return lf, data


def run_labelme_voc(src: Path, out: Path) -> None:
    """labelme2voc.py (instance segmentation, --noviz), as a sequence of labelme's own calls."""
    import labelme

    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject"):
        (out / sub).mkdir(parents=True)
    names, ids = read_class_ids(src / "labels.txt")
    (out / "class_names.txt").write_text("\n".join(names))
    for filename in glob.glob(str(src / "*.json")):
        lf, data = label_file(filename)
        base = Path(filename).stem
        img = labelme.utils.img_data_to_arr(data)
        Image.fromarray(img).save(out / "JPEGImages" / f"{base}.jpg")  # what imgviz.io.imsave does
        cls, ins = labelme.utils.shapes_to_label(
            img_shape=img.shape, shapes=lf.shapes, label_name_to_value=ids
        )
        ins[cls == -1] = 0
        # labelme 6 hands lblsave to imgviz, which takes uint8: -1 (ignore) becomes 255 as in VOC.
        labelme.utils.lblsave(str(out / "SegmentationClass" / f"{base}.png"), cls.astype(np.uint8))
        labelme.utils.lblsave(str(out / "SegmentationObject" / f"{base}.png"), ins.astype(np.uint8))


def run_labelme_coco(src: Path, out: Path) -> None:
    """labelme2coco.py (--noviz), as a sequence of labelme's and pycocotools' own calls."""
    import uuid

    import labelme
    import pycocotools.mask

    (out / "JPEGImages").mkdir(parents=True)
    _, ids = read_class_ids(src / "labels.txt")
    doc: dict[str, Any] = {"images": [], "annotations": [], "type": "instances"}
    doc["categories"] = [{"supercategory": None, "id": i, "name": n} for n, i in ids.items() if i >= 0]
    for image_id, filename in enumerate(glob.glob(str(src / "*.json"))):
        lf, data = label_file(filename)
        base = Path(filename).stem
        img = labelme.utils.img_data_to_arr(data)
        Image.fromarray(img).save(out / "JPEGImages" / f"{base}.jpg")
        doc["images"].append(
            {
                "file_name": f"JPEGImages/{base}.jpg",
                "height": img.shape[0],
                "width": img.shape[1],
                "id": image_id,
            }
        )
        masks: dict[tuple[str, Any], Any] = {}
        segmentations: dict[tuple[str, Any], list[list[float]]] = {}
        for shape in lf.shapes:
            group = shape.get("group_id")
            key = (shape["label"], uuid.uuid1() if group is None else group)
            mask = labelme.utils.shape_to_mask(img.shape[:2], shape["points"], shape["shape_type"])
            masks[key] = masks[key] | mask if key in masks else mask
            segmentations.setdefault(key, []).append(np.asarray(shape["points"]).flatten().tolist())
        for key, mask in masks.items():
            if key[0] not in ids or ids[key[0]] < 0:
                continue
            rle = pycocotools.mask.encode(np.asfortranarray(mask.astype(np.uint8)))
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]),
                    "image_id": image_id,
                    "category_id": ids[key[0]],
                    "segmentation": segmentations[key],
                    "area": float(pycocotools.mask.area(rle)),
                    "bbox": pycocotools.mask.toBbox(rle).flatten().tolist(),
                    "iscrowd": 0,
                }
            )
    (out / "annotations.json").write_text(json.dumps(doc))


def child(mode: str, src: Path, out: Path, ds_dir: Path) -> None:
    t0 = time.perf_counter()
    import_s = 0.0
    if mode == "studio-voc":
        import_s = run_studio("voc", src, out, ds_dir)
    elif mode == "studio-coco":
        import_s = run_studio("coco", src, out, ds_dir)
    elif mode == "labelme-voc":
        run_labelme_voc(src, out)
    else:
        run_labelme_coco(src, out)
    print(
        json.dumps({"convert_s": time.perf_counter() - t0, "import_s": import_s, "peak_kib": peak_rss_kib()})
    )


def peak_rss_kib() -> int:
    """This process's peak resident memory. ``VmHWM`` belongs to the address space made by exec, whereas
    ``ru_maxrss`` of a child also counts the parent's pages it held between fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# ---------------------------------------------------------------------------------------- parent


def run_child(mode: str, src: Path, out: Path, ds_dir: Path) -> dict[str, float]:
    """Wall seconds (process start to exit), in-process conversion seconds and peak RSS in MiB."""
    cmd = [sys.executable, __file__, "--child", mode, str(src), str(out), str(ds_dir)]
    log = out.parent / f"{out.name}.log"
    with log.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{text[-3000:]}")
    last = json.loads(text.strip().splitlines()[-1])
    # ru_maxrss (the OS's figure for the child) is an upper bound that includes the pre-exec parent image.
    peak = min(last["peak_kib"], usage.ru_maxrss)
    return {
        "wall_s": wall,
        "convert_s": last["convert_s"],
        "import_s": last["import_s"],
        "peak_mib": peak / 1024,
    }


def voc_agreement(studio: Path, ref: Path, stems: dict[str, str]) -> tuple[float, float]:
    """Share of equal pixels in SegmentationClass and in SegmentationObject (ignore pixels left out)."""
    same_cls = same_obj = total = total_obj = 0
    for ref_stem, our_stem in stems.items():
        a = np.asarray(Image.open(studio / "SegmentationClass" / f"{our_stem}.png"))
        b = np.asarray(Image.open(ref / "SegmentationClass" / f"{ref_stem}.png"))
        same_cls += int((a == b).sum())
        total += a.size
        oa = np.asarray(Image.open(studio / "SegmentationObject" / f"{our_stem}.png"))
        ob = np.asarray(Image.open(ref / "SegmentationObject" / f"{ref_stem}.png"))
        keep = b != 255
        same_obj += int((oa[keep] == ob[keep]).sum())
        total_obj += int(keep.sum())
    return same_cls / max(total, 1), same_obj / max(total_obj, 1)


def coco_agreement(studio: Path, ref: Path) -> tuple[int, int]:
    """Objects whose (category, area, box) agree between the two, matched per image by file stem."""
    ours: dict[str, list[tuple[int, float, tuple[float, ...]]]] = {}
    theirs: dict[str, list[tuple[int, float, tuple[float, ...]]]] = {}
    for path in sorted((studio / "annotations").glob("instances_*.json")):
        doc = json.loads(path.read_text())
        stem = {im["id"]: Path(im["file_name"]).stem for im in doc["images"]}
        for a in doc["annotations"]:
            ours.setdefault(stem[a["image_id"]], []).append((a["category_id"], a["area"], tuple(a["bbox"])))
    doc = json.loads((ref / "annotations.json").read_text())
    stem = {im["id"]: Path(im["file_name"]).stem for im in doc["images"]}
    for a in doc["annotations"]:
        theirs.setdefault(stem[a["image_id"]], []).append((a["category_id"], a["area"], tuple(a["bbox"])))
    total = sum(len(v) for v in theirs.values())
    same = sum(len(set(ours.get(k, [])) & set(v)) for k, v in theirs.items())
    return same, total


def class_check(studio_voc: Path, ref_voc: Path, studio_coco: Path, ref_coco: Path) -> bool:
    names_ok = (studio_voc / "class_names.txt").read_text() == (ref_voc / "class_names.txt").read_text()
    ours = {
        c["id"]: c["name"]
        for p in (studio_coco / "annotations").glob("*.json")
        for c in json.loads(p.read_text())["categories"]
    }
    theirs = {
        c["id"]: c["name"]
        for c in json.loads((ref_coco / "annotations.json").read_text())["categories"]
        if c["id"] > 0
    }  # labelme2coco also lists _background_ as category 0
    return names_ok and ours == theirs


def stem_map(ds_dir: Path) -> dict[str, str]:
    """labelme's stem (the JSON file's) to the studio's export stem, via each image's source name."""
    from backend.datasets.canonical import CanonicalDataset
    from backend.datasets.export import export_names

    ds = CanonicalDataset.load(ds_dir)
    names = export_names(ds.images)
    return {Path(r.source).stem: names[r.id] for r in ds.images}


def prepare(work: Path, args: argparse.Namespace) -> Path:
    from tests.datasets.synth import make_labelme_project

    src = work / "labelme"
    make_labelme_project(
        src,
        n_images=args.images,
        seed=1,
        labels_txt=LABELS_TXT,
        width=args.width,
        height=args.height,
        shapes_per_image=args.shapes,
    )
    return src


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--shapes", type=int, default=4, help="shapes per image")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each converter; medians are reported")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, src, out, ds_dir = args.child
        child(mode, Path(src), Path(out), Path(ds_dir))
        return
    try:
        import labelme  # noqa: F401
    except Exception as exc:
        raise SystemExit(f"labelme is not importable here ({exc!r}); pip install labelme to compare") from exc

    with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
        work = Path(tmp)
        src = prepare(work, args)
        print(f"{args.images} images {args.width}x{args.height}, {args.shapes} shapes each")
        print("studio timed: import (backend.datasets.formats.parse_upload) + export")
        results: dict[str, list[dict[str, float]]] = {}
        for r in range(args.repeat):
            # Alternate who goes first so the page cache favours neither side.
            order = ["labelme", "studio"] if r % 2 == 0 else ["studio", "labelme"]
            for fmt in ("voc", "coco"):
                for who in order:
                    mode = f"{who}-{fmt}"
                    out = work / f"{mode}-{r}"
                    ds_dir = work / f"ds-{fmt}-{r}"
                    results.setdefault(mode, []).append(run_child(mode, src, out, ds_dir))
        report(results, work, args.repeat - 1)


def report(results: dict[str, list[dict[str, float]]], work: Path, last: int) -> None:
    def med(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in results[mode])

    print(f"\n{'':14}{'wall s':>9}{'convert s':>11}{'of it import':>14}{'peak MiB':>10}")
    for mode in results:
        imp = f"{med(mode, 'import_s'):14.2f}" if mode.startswith("studio") else " " * 14
        conv = f"{med(mode, 'wall_s'):9.2f}{med(mode, 'convert_s'):11.2f}"
        print(f"{mode:14}{conv}{imp}{med(mode, 'peak_mib'):10.0f}")
    print()
    for fmt in ("voc", "coco"):
        s, lm = f"studio-{fmt}", f"labelme-{fmt}"
        print(
            f"{fmt.upper():5} studio/labelme: wall {med(s, 'wall_s') / med(lm, 'wall_s'):.2f}x, "
            f"conversion {med(s, 'convert_s') / med(lm, 'convert_s'):.2f}x, "
            f"peak memory {med(s, 'peak_mib') / med(lm, 'peak_mib'):.2f}x"
            "  (target <= 0.5x time, <= 1.5x memory)"
        )
        pairs = zip(results[s], results[lm], strict=True)
        runs = " ".join(f"{a['wall_s'] / b['wall_s']:.2f}" for a, b in pairs)
        print(f"      wall ratio run by run (each pair from the same round): {runs}")
        export_only = med(s, "convert_s") - med(s, "import_s")
        print(
            f"      of which the export alone: {export_only / med(lm, 'convert_s'):.2f}x labelme's conversion"
        )
    ds_dir = work / f"ds-voc-{last}"
    cls_share, obj_share = voc_agreement(
        work / f"studio-voc-{last}", work / f"labelme-voc-{last}", stem_map(ds_dir)
    )
    same, total = coco_agreement(work / f"studio-coco-{last}", work / f"labelme-coco-{last}")
    ok = class_check(
        work / f"studio-voc-{last}",
        work / f"labelme-voc-{last}",
        work / f"studio-coco-{last}",
        work / f"labelme-coco-{last}",
    )
    print(f"class indices identical (class_names.txt, COCO categories): {ok}")
    print(f"VOC SegmentationClass pixels equal: {100 * cls_share:.4f}% (required >= 99.5%)")
    print(f"VOC SegmentationObject pixels equal (outside ignore): {100 * obj_share:.4f}%")
    print(f"COCO objects with equal category, area and box: {same}/{total}")
    if not ok or cls_share < 0.995:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
