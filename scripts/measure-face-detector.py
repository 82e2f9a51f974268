#!/usr/bin/env python3
"""Measures a face detector as a "shows people" signal on the reference library (README,
"Likely shows people"): MTCNN's three networks as facenet-pytorch 2.6.0's wheel ships them
(`pip download --no-deps facenet-pytorch==2.6.0`, sha256 ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca,
MIT; unzip; pass its facenet_pytorch/data folder), run with that package's default detection
settings through this NumPy restatement of its pipeline (no torch). Written for this
measurement; the detector is not part of the app.

Split as scripts/fit-people-score.py: a photo is held out when sha256(its id) starts with 8-f.
Only photos with COCO labels count (an empty label list says nothing about people).
With PROBS (examples/image_probs.rs output) it also reports the committed people score and
"score or a face".

usage: measure-face-detector.py FACENET_DATA_DIR LIBRARY_DIR [PROBS.jsonl]
"""
import hashlib, json, math, os, pickle, struct, sys
import numpy as np
from PIL import Image

class _T:  # tensor stub
    def __init__(s, st, off, size, stride): s.st, s.off, s.size, s.stride = st, off, size, stride

class _U(pickle.Unpickler):
    def find_class(s, mod, name):
        if (mod, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return lambda st, off, size, stride, *a: _T(st, off, size, stride)
        if (mod, name) == ('collections', 'OrderedDict'):
            import collections; return collections.OrderedDict
        if mod == 'torch' and name.endswith('Storage'): return name
        raise pickle.UnpicklingError(f'{mod}.{name}')
    def persistent_load(s, pid):
        assert pid[0] == 'storage' and pid[1] == 'FloatStorage'
        return pid[2]  # storage key

def load_legacy(path):
    f = open(path, 'rb')
    assert pickle.load(f) == 0x1950a86a20f9469cfc6c
    assert pickle.load(f) == 1001
    pickle.load(f)  # sys_info
    sd = _U(f).load()
    keys = pickle.load(f)
    bufs = {}
    for k in keys:
        n = struct.unpack('<q', f.read(8))[0]
        bufs[k] = np.frombuffer(f.read(4 * n), '<f4')
    out = {}
    for name, t in sd.items():
        out[name] = np.lib.stride_tricks.as_strided(
            bufs[t.st][t.off:], shape=t.size, strides=[4 * s for s in t.stride]).copy()
    return out

def conv(x, w, b):  # x (C,H,W), w (O,I,kh,kw), valid, stride 1
    O, I, kh, kw = w.shape; _, H, W = x.shape
    cols = np.stack([x[:, i:i + H - kh + 1, j:j + W - kw + 1] for i in range(kh) for j in range(kw)], 1)
    # cols (I, kh*kw, Ho, Wo)
    return np.einsum('ikhw,oik->ohw', cols, w.reshape(O, I, kh * kw)) + b[:, None, None]

def prelu(x, a):
    a = a.reshape((-1,) + (1,) * (x.ndim - 1)) if x.ndim == 3 else a
    return np.where(x > 0, x, x * a)

def maxpool_ceil(x, k, s):
    C, H, W = x.shape
    Ho = -(-(H - k) // s) + 1; Wo = -(-(W - k) // s) + 1
    out = np.empty((C, Ho, Wo), np.float32)
    for i in range(Ho):
        for j in range(Wo):
            out[:, i, j] = x[:, i * s:min(i * s + k, H), j * s:min(j * s + k, W)].max((1, 2))
    return out

def softmax(v, axis): e = np.exp(v - v.max(axis, keepdims=True)); return e / e.sum(axis, keepdims=True)

def pnet(p, x):
    x = maxpool_ceil(prelu(conv(x, p['conv1.weight'], p['conv1.bias']), p['prelu1.weight']), 2, 2)
    x = prelu(conv(x, p['conv2.weight'], p['conv2.bias']), p['prelu2.weight'])
    x = prelu(conv(x, p['conv3.weight'], p['conv3.bias']), p['prelu3.weight'])
    return conv(x, p['conv4_2.weight'], p['conv4_2.bias']), softmax(conv(x, p['conv4_1.weight'], p['conv4_1.bias']), 0)

def rnet(p, x):
    x = maxpool_ceil(prelu(conv(x, p['conv1.weight'], p['conv1.bias']), p['prelu1.weight']), 3, 2)
    x = maxpool_ceil(prelu(conv(x, p['conv2.weight'], p['conv2.bias']), p['prelu2.weight']), 3, 2)
    x = prelu(conv(x, p['conv3.weight'], p['conv3.bias']), p['prelu3.weight'])
    v = x.transpose(2, 1, 0).reshape(-1)  # (C,H,W) -> (W,H,C) flatten, = torch permute(0,3,2,1)
    v = prelu(p['dense4.weight'] @ v + p['dense4.bias'], p['prelu4.weight'])
    return p['dense5_2.weight'] @ v + p['dense5_2.bias'], softmax(p['dense5_1.weight'] @ v + p['dense5_1.bias'], 0)

def onet(p, x):
    x = maxpool_ceil(prelu(conv(x, p['conv1.weight'], p['conv1.bias']), p['prelu1.weight']), 3, 2)
    x = maxpool_ceil(prelu(conv(x, p['conv2.weight'], p['conv2.bias']), p['prelu2.weight']), 3, 2)
    x = maxpool_ceil(prelu(conv(x, p['conv3.weight'], p['conv3.bias']), p['prelu3.weight']), 2, 2)
    x = prelu(conv(x, p['conv4.weight'], p['conv4.bias']), p['prelu4.weight'])
    v = x.transpose(2, 1, 0).reshape(-1)
    v = prelu(p['dense5.weight'] @ v + p['dense5.bias'], p['prelu5.weight'])
    return (p['dense6_2.weight'] @ v + p['dense6_2.bias'], p['dense6_3.weight'] @ v + p['dense6_3.bias'],
            softmax(p['dense6_1.weight'] @ v + p['dense6_1.bias'], 0))


def area_resize(img, oh, ow):  # torch interpolate(mode='area') == adaptive_avg_pool2d; img (C,H,W)
    C, H, W = img.shape
    rs = [(i * H // oh, -(-(i + 1) * H // oh)) for i in range(oh)]
    cs = [(j * W // ow, -(-(j + 1) * W // ow)) for j in range(ow)]
    tmp = np.stack([img[:, a:b, :].mean(1) for a, b in rs], 1)
    return np.stack([tmp[:, :, a:b].mean(2) for a, b in cs], 2).astype(np.float32)

def norm(x): return ((x - 127.5) * 0.0078125).astype(np.float32)

def nms(boxes, scores, thr, method='tv'):
    # 'tv' = torchvision.ops.nms (IoU, no +1, suppress > thr); 'Min' = nms_numpy (+1, Min, keep <= thr)
    order = np.argsort(-scores, kind='stable') if method == 'tv' else np.argsort(scores)[::-1]
    p = 0 if method == 'tv' else 1
    x1, y1, x2, y2 = boxes.T; area = (x2 - x1 + p) * (y2 - y1 + p)
    keep = []
    while order.size:
        i = order[0]; keep.append(i); r = order[1:]
        w = np.maximum(0, np.minimum(x2[i], x2[r]) - np.maximum(x1[i], x1[r]) + p)
        h = np.maximum(0, np.minimum(y2[i], y2[r]) - np.maximum(y1[i], y1[r]) + p)
        inter = w * h
        o = inter / np.minimum(area[i], area[r]) if method == 'Min' else inter / (area[i] + area[r] - inter)
        order = r[o <= thr]
    return np.array(keep, dtype=int)

def rerec(b):
    b = b.copy(); h = b[:, 3] - b[:, 1]; w = b[:, 2] - b[:, 0]; l = np.maximum(w, h)
    b[:, 0] += w * 0.5 - l * 0.5; b[:, 1] += h * 0.5 - l * 0.5; b[:, 2] = b[:, 0] + l; b[:, 3] = b[:, 1] + l
    return b

def bbreg(b, reg):
    b = b.copy(); w = b[:, 2] - b[:, 0] + 1; h = b[:, 3] - b[:, 1] + 1
    b[:, 0] += reg[:, 0] * w; b[:, 1] += reg[:, 1] * h; b[:, 2] += reg[:, 2] * w; b[:, 3] += reg[:, 3] * h
    return b

def crops(img, boxes, size, W, H):
    b = np.trunc(boxes[:, :4]).astype(int)
    x, y, ex, ey = b[:, 0].clip(1, None), b[:, 1].clip(1, None), b[:, 2].clip(None, W), b[:, 3].clip(None, H)
    return np.stack([norm(area_resize(img[:, y[k] - 1:ey[k], x[k] - 1:ex[k]], size, size)) for k in range(len(b))])

def detect(P, R, O, img, minsize=20, thr=(0.6, 0.7, 0.7), factor=0.709):
    C, H, W = img.shape
    m = 12.0 / minsize; minl = min(H, W) * m; scales = []; s = m
    while minl >= 12: scales.append(s); s *= factor; minl *= factor
    allb = [np.zeros((0, 9), np.float32)]
    for s in scales:
        reg, prob = pnet(P, norm(area_resize(img, int(H * s + 1), int(W * s + 1))))
        ys, xs = np.nonzero(prob[1] >= thr[0])
        if not len(ys): continue
        sc = prob[1][ys, xs]; bb = np.stack([xs, ys], 1).astype(np.float32)
        q1 = np.floor((2 * bb + 1) / s); q2 = np.floor((2 * bb + 12) / s)
        b = np.concatenate([q1, q2, sc[:, None], reg[:, ys, xs].T], 1)
        allb.append(b[nms(b[:, :4], b[:, 4], 0.5)])
    b = np.concatenate(allb); b = b[nms(b[:, :4], b[:, 4], 0.7)]
    w = b[:, 2] - b[:, 0]; h = b[:, 3] - b[:, 1]
    b = np.stack([b[:, 0] + b[:, 5] * w, b[:, 1] + b[:, 6] * h, b[:, 2] + b[:, 7] * w, b[:, 3] + b[:, 8] * h, b[:, 4]], 1)
    b = rerec(b)
    b = b[valid(b, W, H)]
    if not len(b): return b[:, :5]
    out = [rnet(R, c) for c in crops(img, b, 24, W, H)]
    reg = np.stack([o[0] for o in out]); sc = np.array([o[1][1] for o in out]); ok = sc > thr[1]
    if not ok.any(): return np.zeros((0, 5), np.float32)
    b = np.concatenate([b[ok, :4], sc[ok, None]], 1); reg = reg[ok]
    k = nms(b[:, :4], b[:, 4], 0.7); b = rerec(bbreg(b[k], reg[k]))
    b = b[valid(b, W, H)]
    if not len(b): return b[:, :5]
    out = [onet(O, c) for c in crops(img, b, 48, W, H)]
    reg = np.stack([o[0] for o in out]); sc = np.array([o[2][1] for o in out])
    ok = sc > thr[2]
    if not ok.any(): return np.zeros((0, 5), np.float32)
    b = np.concatenate([b[ok, :4], sc[ok, None]], 1); reg = reg[ok]
    b = bbreg(b, reg); k = nms(b[:, :4], b[:, 4], 0.7, 'Min')
    return b[k]



def valid(b, W, H):
    """Boxes whose crop inside the image is not empty (upstream skips such crops silently and
    then pairs later boxes with the wrong outputs; here they are dropped)."""
    t = np.trunc(b[:, :4]).astype(int)
    return (np.minimum(t[:, 3], H) > np.maximum(t[:, 1], 1) - 1) & (np.minimum(t[:, 2], W) > np.maximum(t[:, 0], 1) - 1)


def held_out(photo_id):
    return hashlib.sha256(photo_id.encode()).hexdigest()[0] in "89abcdef"


def people_score(model, probs):
    z = model["bias"] + sum(w * math.log(max(p, 0.0) + model["eps"]) for w, p in zip(model["weights"], probs))
    return 1.0 / (1.0 + math.exp(-(model["platt_a"] * z + model["platt_c"])))


def report(name, pred, truth):
    tp = sum(p and t for p, t in zip(pred, truth))
    n = sum(pred)
    print(f"  {name}: says people for {n}, precision {tp / max(1, n):.3f}, recall {tp / max(1, sum(truth)):.3f}")


def main():
    data, lib = sys.argv[1], sys.argv[2]
    P, R, O = (load_legacy(os.path.join(data, f"{n}.pt")) for n in ("pnet", "rnet", "onet"))
    probs = {}
    if len(sys.argv) > 3:
        for line in open(sys.argv[3]):
            r = json.loads(line)
            probs[r["id"]] = r["probs"]
    here = os.path.dirname(os.path.abspath(__file__))
    model = json.load(open(os.path.join(here, "..", "data", "people-score.json")))
    rows = []
    for line in open(os.path.join(lib, "manifest.jsonl")):
        m = json.loads(line)
        if not m.get("labels"):
            continue
        img = np.asarray(Image.open(os.path.join(lib, m["file"])).convert("RGB")).transpose(2, 0, 1).astype(np.float32)
        faces = detect(P, R, O, img)
        rows.append((m["id"], "person" in m["labels"], [float(f[4]) for f in faces]))
    for half in ("fitting", "held-out"):
        rs = [r for r in rows if held_out(r[0]) == (half == "held-out")]
        truth = [r[1] for r in rs]
        print(f"{half}: {len(rs)} photos, {sum(truth)} with people")
        for t in (0.9, 0.97, 0.99):
            report(f"a face >= {t}", [any(p >= t for p in r[2]) for r in rs], truth)
        if probs:
            s = [people_score(model, probs[r[0]]) >= model["threshold"] for r in rs]
            report("people score", s, truth)
            report("score or a face >= 0.9", [a or any(p >= 0.9 for p in r[2]) for a, r in zip(s, rs)], truth)


if __name__ == "__main__":
    main()
