#!/usr/bin/env python3
"""Generates the C-API sweep (a C program) from include/mixflow.h: every exported function is called with
NULL for each pointer, with 0, -1, INT64_MAX, 2^32, 2^63 and UINT64_MAX for each integer (converted to the
parameter's type, plus the type's own extremes) and with NaN, +Inf and -Inf for each float, one argument at a
time, the others valid (real handles of a tiny transport, model, trainer, sampler, tensor file, tensor writer,
IDX file and feature net), all in one process. The program fails when a call that returns a status fails
without a message (mixflow_last_error() empty) or returns an unknown status; a trap or an ASan report fails it
too. It prints the number of calls made.

    scripts/gen-capi-sweep.py > sweep.c        (scripts/capi-sweep.sh builds and runs it under ASan)

New functions are swept automatically; a new handle, params struct or callback type needs a line in the tables
below (the generator stops with a message naming what it does not know).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "mixflow.h"

HANDLES = {"transport", "model", "trainer", "sampler", "tensor_file", "tensor_writer", "idx", "featnet"}
PARAMS = {"transport_params", "model_params", "trainer_params", "sampler_params", "model_load_params",
          "model_save_params"}
CALLBACKS = {"mixflow_model_fn": "sweep_model_fn", "mixflow_gradient_fn": "sweep_gradient_fn"}
ENUMS = {"mixflow_status", "mixflow_path", "mixflow_convention", "mixflow_prediction", "mixflow_pixel_scaling",
         "mixflow_export_format", "mixflow_slow_flow_reference", "mixflow_idx_dtype"}

# Valid values for integer and string arguments, by "function.parameter" first, then by parameter name. The
# baseline call of each function uses them; sizes are small and every buffer is a zeroed 256 KiB block.
VALID = {
    "batch": "2", "dim": "32", "n": "2", "seed": "1", "step": "0", "first_sample": "0", "index": "0",
    "count": "4", "capacity": "64", "cap": "4096", "struct_size": None,   # None: sizeof the struct (below)
    "num_times": "2", "num_data": "2", "n_a": "8", "n_b": "8", "num_subsets": "2", "subset_size": "4",
    "channels": "1", "height": "4", "width": "4", "columns": "2", "num_classes": "3", "ema": "0",
    "num_threads": "1", "external_threshold_bytes": "0", "shape_capacity": "8", "dims_cap": "8", "out_bytes": "32",
    "decay_start": "10", "decay_end": "20", "coverage": "0.9", "ndim": "2", "status": "0",
    "name": '"sit"', "path": "tmp_path(\"any\")", "key": '"k"', "value": '"v"',
    "mixflow_featnet_accuracy.dim": "feat_input_dim", "mixflow_featnet_classify.dim": "feat_input_dim",
    "mixflow_featnet_features.dim": "feat_input_dim", "mixflow_feature_stats_load.dim": "feat_dim",
    "mixflow_kid_compute.dim": "4", "mixflow_frechet_distance_compute.dim": "4",
    "mixflow_frechet_distance_from_stats.dim": "4", "mixflow_feature_stats_compute.dim": "4",
    "mixflow_slow_flow_measure.dim": "4",
    "mixflow_idx_read_f32.count": "32", "mixflow_idx_read_i32.count": "32",
    "mixflow_tensor_file_read.count": "64", "mixflow_tensor_file_read_index.count": "64",
    "mixflow_model_tensor_info.index": "0", "mixflow_tensor_file_metadata_key.index": "0",
    "mixflow_model_get_tensor.name": '"y_embedder.embedding_table.weight"',
    "mixflow_model_get_grad.name": '"y_embedder.embedding_table.weight"',
    "mixflow_model_set_tensor.name": '"y_embedder.embedding_table.weight"',
    "mixflow_tensor_file_read.name": '"y_embedder.embedding_table.weight"',
    "mixflow_tensor_file_find.name": '"y_embedder.embedding_table.weight"',
    "mixflow_tensor_writer_add.name": '"w"', "mixflow_tensor_writer_add_typed.name": '"w_typed"',
    "mixflow_tensor_writer_add_typed.dtype": "7",   # int64 (2 x 4 of them fit the zeroed pool buffer)
    "mixflow_tensor_file_read_stored.nbytes": "16",
    "mixflow_tensor_file_metadata.key": '"model.arch"',
    "mixflow_transport_preset_params.dim": "0", "mixflow_sampler_step.index": "0",
    "mixflow_equal_labels.n": "4",
    "mixflow_featnet_load.path": "featnet_path", "mixflow_feature_stats_load.path": "stats_path",
    "mixflow_idx_load.path": "idx_path", "mixflow_model_load_onnx.path": "onnx_path",
    "mixflow_tensor_file_load.path": "onnx_path", "mixflow_trainer_resume.path": "checkpoint_path",
    "mixflow_trainer_save.path": "tmp_path(\"trainer.mixflow\")",
    "mixflow_model_save_onnx.path": "tmp_path(\"saved.onnx\")",
    "mixflow_tensor_writer_create.path": "tmp_path(\"writer.onnx\")",
    "mixflow_samples_write_npz.path": "tmp_path(\"s.npz\")", "mixflow_samples_write_png.path": "tmp_path(\"s.png\")",
    "mixflow_slow_flow_export.path": "tmp_path(\"sf.csv\")",
}
# Shapes passed as `const int64_t *shape`: the y embedding of the tiny model is [num_classes + 1, hidden].
SHAPES = {"mixflow_model_get_tensor", "mixflow_model_get_grad", "mixflow_model_set_tensor", "mixflow_tensor_writer_add",
          "mixflow_tensor_writer_add_typed"}

# Cases not run: with the value 2^32 these sizes are valid (2^32 rows of the tiny shape fit in 64 bits and pass
# every range check), so the call must read (or write) a caller buffer of the size the caller claims, which no C
# library can check: C passes no buffer lengths. (INT64_MAX, 2^63 and the rest are still swept for them, and must
# be refused.) `scripts/capi-sweep.sh --fork` lists the calls that crash, to review this table.
BUFFER_EXEMPT_2_32 = {
    "mixflow_featnet_accuracy": ["n"], "mixflow_featnet_classify": ["n"], "mixflow_featnet_features": ["n"],
    "mixflow_feature_stats_compute": ["n"], "mixflow_frechet_distance_compute": ["n_a", "n_b"],
    "mixflow_kid_compute": ["n_a", "n_b"], "mixflow_model_forward": ["batch"], "mixflow_model_gradients": ["batch"],
    "mixflow_sample_model": ["batch"],
    "mixflow_sample": ["batch", "dim"], "mixflow_sampler_step": ["batch", "dim"],
    "mixflow_samples_to_uint8": ["batch", "channels", "height", "width"],
    "mixflow_samples_write_npz": ["batch", "height", "width", "channels"],
    "mixflow_slow_flow_export": ["batch", "num_times"], "mixflow_slow_flow_measure": ["num_times", "batch", "dim"],
    "mixflow_slow_flow_stats": ["batch", "num_times"], "mixflow_slow_flow_suggest_gamma": ["batch", "num_times"],
    "mixflow_slow_flow_lag": ["batch", "num_times"],
    "mixflow_trainer_step": ["batch"], "mixflow_trainer_step_features": ["batch"], "mixflow_transport_loss": ["batch", "dim"],
    "mixflow_transport_prepare": ["batch", "dim"],
}
BUFFER_EXEMPT = {f"{fn}.{p}=(int64_t)4294967296LL" for fn, ps in BUFFER_EXEMPT_2_32.items() for p in ps}

INT_TYPES = {
    "int64_t": ["0", "-1", "INT64_MAX", "(int64_t)4294967296LL", "INT64_MIN"],
    "uint64_t": ["0", "UINT64_MAX", "(uint64_t)INT64_MAX", "(uint64_t)4294967296ULL", "(uint64_t)1 << 63"],
    "size_t": ["0", "SIZE_MAX", "(size_t)INT64_MAX", "(size_t)4294967296ULL", "(size_t)1 << 63"],
    "int32_t": ["0", "-1", "INT32_MAX", "INT32_MIN"],
    "uint32_t": ["0", "UINT32_MAX", "(uint32_t)1 << 31"],
}
FLOAT_TYPES = {"double": ["NAN", "INFINITY", "-INFINITY"], "float": ["NAN", "INFINITY", "-INFINITY"]}


def parse_header(text: str):
    """[(return type, name, [(type, name)])] of the prototypes in mixflow.h (comments dropped; a prototype
    starts at column 0 and may wrap)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    functions = []
    for m in re.finditer(r"^([a-z][^;(#]*?)\b(mixflow_\w+)\(([^)]*)\)[^;]*;", text, re.M):
        ret, name, args = m.group(1).strip(), m.group(2), " ".join(m.group(3).split())
        params = []
        if args and args != "void":
            for a in args.split(","):
                a = a.strip()
                pm = re.match(r"(.*?)([A-Za-z_][A-Za-z0-9_]*)$", a)
                params.append((pm.group(1).strip(), pm.group(2)))
        functions.append((ret, name, params))
    return functions


def kind(ptype: str):
    t = ptype.replace("const", "").replace(" ", "")
    if t in CALLBACKS:
        return "callback"
    if t.count("*") == 2 and t.startswith("mixflow_") and t[len("mixflow_"):-2] in HANDLES:
        return "out_handle"
    if t.count("*") == 1 and t.startswith("mixflow_") and t[len("mixflow_"):-1] in HANDLES:
        return "handle"
    if t.count("*") == 1 and t.startswith("mixflow_") and t[len("mixflow_"):-1] in PARAMS:
        return "params_in" if "const" in ptype else "params_out"
    if t == "char*" and "const" in ptype:
        return "string"
    if "*" in t:
        return "buffer"
    if t in INT_TYPES:
        return "int"
    if t in FLOAT_TYPES:
        return "float"
    if t in ENUMS:
        return "enum"
    sys.exit(f"gen-capi-sweep: unknown parameter type {ptype!r}; add it to the tables")


def valid_value(fn: str, ptype: str, pname: str, k: str, index: int) -> str:
    t = ptype.replace("const", "").replace(" ", "")
    if k == "handle":
        return f"h_{t[len('mixflow_'):-1]}"
    if k == "out_handle":
        return f"&oh_{index}"
    if k == "params_in":
        return f"&p_{t[len('mixflow_'):-1]}"
    if k == "params_out":
        return f"&po_{index}"
    if k == "callback":
        return CALLBACKS[t]
    if k == "buffer":
        if pname == "shape" and fn in SHAPES:
            return "tiny_shape"
        if pname == "user_data" or pname.endswith("user_data"):
            return "NULL"
        return f"pool[{index}]"
    if k == "enum":
        return "0"
    key = f"{fn}.{pname}"
    if key in VALID:
        return VALID[key]
    if pname == "struct_size":
        return None
    if pname in VALID:
        return VALID[pname]
    if k == "float":
        return "0.5"
    if k == "string":
        return '"x"'
    return "1"


def hostile_values(ptype: str, k: str):
    t = ptype.replace("const", "").replace(" ", "")
    if k in ("handle", "out_handle", "params_in", "params_out", "buffer", "string", "callback"):
        return ["NULL"]
    if k == "int":
        return INT_TYPES[t]
    if k == "float":
        return FLOAT_TYPES[t]
    if k == "enum":
        return ["-1", "INT32_MAX", "INT32_MIN", "77"]
    return []


def emit(functions) -> str:
    out = [PRELUDE]
    cases = 0
    out.append("static void sweep(void) {")
    for ret, fn, params in functions:
        if fn.endswith("_free"):
            out.append(f"    {fn}(NULL); note_call();")   # the real handles are freed once, at the end
            cases += 1
            continue
        kinds = [kind(pt, ) for pt, _ in params]
        struct_of = {}
        for i, (pt, pn) in enumerate(params):
            if kinds[i] == "params_out":
                struct_of[i] = pt.replace("const", "").replace("*", "").strip()
        # The struct size that goes with a params pointer is the previous or next params argument's struct.
        variants = [None] + [(i, v) for i, (pt, pn) in enumerate(params) for v in hostile_values(pt, kinds[i])]
        for variant in variants:
            if variant is not None:
                label = f"{fn}.{params[variant[0]][1]}={variant[1]}"
                if label in BUFFER_EXEMPT:
                    continue
            args = []
            for i, (pt, pn) in enumerate(params):
                if variant is not None and variant[0] == i:
                    v = variant[1]
                    if kinds[i] == "enum":
                        v = f"({pt}){v}"
                    elif v == "NULL" and kinds[i] == "callback":
                        v = f"({pt})NULL"
                    args.append(v)
                    continue
                v = valid_value(fn, pt, pn, kinds[i], i)
                if v is None:   # struct_size: sizeof the params struct of this call
                    st = next(iter(struct_of.values()), None)
                    v = f"(uint32_t)sizeof({st})" if st else "64"
                args.append(v)
            label = fn if variant is None else f"{fn}.{params[variant[0]][1]}={variant[1]}"
            decls = "".join(f" {pt.replace('const', '').replace('*', '').strip()} *oh_{i} = NULL;"
                            for i, (pt, _) in enumerate(params) if kinds[i] == "out_handle")
            decls += "".join(f" {struct_of[i]} po_{i}; memset(&po_{i}, 0, sizeof po_{i});" for i in struct_of)
            frees = "".join(f" if (oh_{i}) {pt.replace('const', '').replace('*', '').strip()}_free(oh_{i});"
                            for i, (pt, _) in enumerate(params) if kinds[i] == "out_handle")
            frees = frees.replace("mixflow_", "mixflow_", 1)
            call = f"{fn}({', '.join(args)})"
            if ret == "mixflow_status":
                body = f"mixflow_status st = {call}; check_status({c_str(label)}, st);"
            elif ret == "void":
                body = f"{call};"
            else:
                body = f"if ({call}) {{}}"   # getters: the value is not checked, only that the call returns
            out.append(f"    {{ if (begin({c_str(label)})) {{{decls} reset_pool(); {body}{frees} end(); }} }}")
            cases += 1
    out.append("}")
    out.append(f"static const long expected_cases = {cases};")
    out.append(MAIN)
    return "\n".join(out) + "\n"


def c_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


PRELUDE = r'''/* GENERATED by scripts/gen-capi-sweep.py from include/mixflow.h — do not edit. */
#define _GNU_SOURCE
#include "mixflow.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { POOL = 16, POOL_BYTES = 1 << 18 };   /* 256 KiB each: more than any baseline call reads or writes */
static void *pool[POOL];
static long calls, failures, forked_crashes;
static int fork_each;               /* --fork: run each call in a child (diagnosis: lists every crashing call) */
static const char *only;            /* --only PREFIX: run the calls whose label starts with PREFIX */
static char tmpdir[256];
static const char *featnet_path, *stats_path;
static char onnx_path[300], idx_path[300], checkpoint_path[300];
static int64_t feat_input_dim, feat_dim;
static int64_t tiny_shape[2] = {4, 16};
static mixflow_transport *h_transport; static mixflow_model *h_model; static mixflow_trainer *h_trainer;
static mixflow_sampler *h_sampler; static mixflow_tensor_file *h_tensor_file; static mixflow_tensor_writer *h_tensor_writer;
static mixflow_idx *h_idx; static mixflow_featnet *h_featnet;
static mixflow_transport_params p_transport_params; static mixflow_model_params p_model_params;
static mixflow_trainer_params p_trainer_params; static mixflow_sampler_params p_sampler_params;
static mixflow_model_load_params p_model_load_params; static mixflow_model_save_params p_model_save_params;

static const char *tmp_path(const char *name) {
    static char buf[8][320]; static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}
static int32_t sweep_model_fn(void *u, int64_t batch, int64_t dim, const float *x, const float *t, const int32_t *y, float *out) {
    (void)u; (void)x; (void)t; (void)y;
    memset(out, 0, (size_t)(batch * dim) * sizeof(float));
    return 0;
}
static int32_t sweep_gradient_fn(void *u, float *g, int64_t count, int64_t step) { (void)u; (void)g; (void)count; (void)step; return 0; }
static void reset_pool(void) { for (int i = 0; i < POOL; i++) memset(pool[i], 0, POOL_BYTES); }
static void note_call(void) { calls++; }
static pid_t child;
static int begin(const char *label) {
    if (only && strncmp(label, only, strlen(only)) != 0) return 0;
    calls++;
    if (!fork_each) return 1;
    fflush(stdout);
    child = fork();
    if (child == 0) return 1;
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        forked_crashes++;
        printf("CRASH %s (%s %d)\n", label, WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    return 0;
}
static void end(void) { if (fork_each && child == 0) _exit(failures ? 3 : 0); }
static void check_status(const char *label, mixflow_status st) {
    const char *msg = mixflow_last_error();
    if ((int)st < 0 || (int)st > 10) { printf("FAIL %s: unknown status %d\n", label, (int)st); failures++; return; }
    if (st != MIXFLOW_OK && (msg == NULL || msg[0] == 0)) { printf("FAIL %s: status %d without a message\n", label, (int)st); failures++; }
    if (st == MIXFLOW_OK && msg != NULL && msg[0] != 0) { printf("FAIL %s: OK with a stale message \"%s\"\n", label, msg); failures++; }
}
#define MUST(call) do { mixflow_status s_ = (call); if (s_ != MIXFLOW_OK) { \
    fprintf(stderr, "setup: %s failed: %s\n", #call, mixflow_last_error()); exit(2); } } while (0)

static void setup(const char *root) {
    static char fp[400], sp[400];
    snprintf(fp, sizeof fp, "%s/share/featnet/fmnist-cnn.mxfnet", root); featnet_path = fp;
    snprintf(sp, sizeof sp, "%s/share/featnet/fmnist-test-stats.mxfstat", root); stats_path = sp;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mixflow-capi-sweep-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); exit(2); }
    for (int i = 0; i < POOL; i++) pool[i] = calloc(1, POOL_BYTES);
    MUST(mixflow_transport_default_params(&p_transport_params, sizeof p_transport_params));
    MUST(mixflow_model_default_params(&p_model_params, sizeof p_model_params));
    memset(p_model_params.arch, 0, sizeof p_model_params.arch);
    p_model_params.depth = 1; p_model_params.hidden = 16; p_model_params.heads = 2; p_model_params.patch = 2;
    p_model_params.input_size = 4; p_model_params.in_channels = 2; p_model_params.num_classes = 3;
    p_model_params.num_threads = 1;
    MUST(mixflow_trainer_default_params(&p_trainer_params, sizeof p_trainer_params));
    p_trainer_params.num_threads = 1;
    MUST(mixflow_sampler_default_params(&p_sampler_params, sizeof p_sampler_params));
    p_sampler_params.method = MIXFLOW_SAMPLER_EULER; p_sampler_params.num_steps = 3;
    MUST(mixflow_model_load_default_params(&p_model_load_params, sizeof p_model_load_params));
    MUST(mixflow_model_save_default_params(&p_model_save_params, sizeof p_model_save_params));
    p_transport_params.num_threads = 1;
    MUST(mixflow_transport_create(&p_transport_params, &h_transport));
    MUST(mixflow_model_create(&p_model_params, &h_model));
    MUST(mixflow_trainer_create(h_model, h_transport, &p_trainer_params, &h_trainer));
    MUST(mixflow_sampler_create(&p_sampler_params, &h_sampler));
    snprintf(onnx_path, sizeof onnx_path, "%s/tiny.onnx", tmpdir);
    MUST(mixflow_model_save_onnx(h_model, onnx_path, &p_model_save_params));
    MUST(mixflow_tensor_file_load(onnx_path, &h_tensor_file));
    snprintf(checkpoint_path, sizeof checkpoint_path, "%s/tiny.mixflow", tmpdir);
    MUST(mixflow_trainer_save(h_trainer, checkpoint_path));
    MUST(mixflow_tensor_writer_create(tmp_path("w.onnx"), 0, &h_tensor_writer));
    /* A 2 x 4 x 4 uint8 IDX file. */
    snprintf(idx_path, sizeof idx_path, "%s/tiny.idx", tmpdir);
    FILE *f = fopen(idx_path, "wb");
    unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4}, px[32] = {0};
    fwrite(head, 1, 16, f); fwrite(px, 1, 32, f); fclose(f);
    MUST(mixflow_idx_load(idx_path, &h_idx));
    MUST(mixflow_featnet_load(featnet_path, &h_featnet));
    int64_t classes = 0;
    MUST(mixflow_featnet_info(h_featnet, &feat_input_dim, &feat_dim, &classes));
}
static void teardown(void) {
    mixflow_transport_free(h_transport); mixflow_trainer_free(h_trainer); mixflow_model_free(h_model);
    mixflow_sampler_free(h_sampler); mixflow_tensor_file_free(h_tensor_file); mixflow_tensor_writer_free(h_tensor_writer);
    mixflow_idx_free(h_idx); mixflow_featnet_free(h_featnet);
    for (int i = 0; i < POOL; i++) free(pool[i]);
    char cmd[400]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}
'''

MAIN = r'''
int main(int argc, char **argv) {
    const char *root = ".";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fork")) fork_each = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else root = argv[i];
    }
    setup(root);
    sweep();
    teardown();
    printf("capi-sweep: %ld calls (%ld generated cases) of %s exported functions, %ld failures%s\n", calls, expected_cases,
           FUNCTIONS, failures, fork_each ? "" : ", no trap");
    if (fork_each) printf("capi-sweep: %ld crashing calls\n", forked_crashes);
    return failures || forked_crashes ? 1 : 0;
}
'''


def main():
    functions = parse_header(HEADER.read_text())
    text = emit(functions).replace("FUNCTIONS", f'"{len(functions)}"')
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
