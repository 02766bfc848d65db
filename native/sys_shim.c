/*
 * sealroot's only native code: a generic syscall(2) shim for Node-API, fs-verity's per-block hashing, and the boot's
 * other digests and its constant-time compare (so that a boot never loads node:crypto).
 * All syscall numbers, flags and struct layouts live in TypeScript (src/sys/).
 *
 *   syscall(nr, ...args) -> number   raw return value (>= 0)
 *     args: number | bigint | string (passed as a NUL-terminated copy) |
 *           Buffer / TypedArray / ArrayBuffer (passed as a pointer to its bytes) | null/undefined (0)
 *     on failure throws an Error with .errno (positive number) and .nr
 *   syscallOrErrno(nr, ...args) -> number
 *                                     the same, but a failure returns -errno instead of throwing: for the failures a
 *                                     boot expects (a file that may be absent, a directory that may exist), where
 *                                     the exception's cost is ms under QEMU TCG
 *   addressOf(buffer) -> bigint       address of a buffer's bytes, for structs that hold pointers
 *                                     (the caller keeps the buffer alive across the syscall)
 *   mapping(address, length) -> ArrayBuffer
 *                                     the bytes of a mapping made with the mmap syscall; the ArrayBuffer owns it
 *                                     and munmap()s it when it is collected (or when the thread's Node env ends)
 *   hashBlocks(data, blockSize, algorithm, paddedSalt, out) -> number
 *                                     fs-verity's hash of every block of data ('sha256' | 'sha512'), digests
 *                                     written contiguously into out; returns the number of blocks
 *   hashBlocksAsync(data, blockSize, algorithm, paddedSalt, out) -> Promise<number>
 *                                     the same on a thread of libuv's pool (arguments checked at the call)
 *   copyHashRangesAsync(control, next, stop, lengths, source, destination, size, rangeSize, blockSize, algorithm,
 *                       paddedSalt, out) -> Promise<number>
 *                                     on a thread of libuv's pool, until no range is left or control[stop] is set:
 *                                     claims range i = control[next]++ (atomically, shared with other such calls),
 *                                     pread(2)s its bytes of source into memory at destination + its offset (a
 *                                     shared writable mapping of the image's memfd, mapped until every such call
 *                                     has settled; 0: into a buffer of the thread's own, for a file only hashed),
 *                                     hashes them there (hashBlocks, digests at their place in out), and sets
 *                                     lengths[i] to the bytes read (fewer at the source's end);
 *                                     resolves to the ranges it did; a failed pread sets control[stop] and
 *                                     rejects with .errno
 *   digest(algorithm, ...data) -> Buffer
 *                                     the hash of the data's concatenation ('sha1' | 'sha256' | 'sha384' |
 *                                     'sha512'; data: TypedArrays or DataViews, none for the empty input): the
 *                                     boot's TPM Names, policy digests, cap events and fs-verity descriptor without
 *                                     node:crypto, whose loading costs ~90 ms of a boot under QEMU TCG
 *   equalConstantTime(a, b) -> boolean
 *                                     a and b hold the same bytes (CRYPTO_memcmp: the time does not depend on where
 *                                     they differ); false at once for different lengths, which are not secret
 */
#define _GNU_SOURCE
/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 but still exported by node: they run the block function
 * directly, with no provider dispatch per call (measured: as fast per 4 KiB block as one whole-buffer hash;
 * SHA256() goes through EVP_Q_digest, a fetch per call, ~8% slower). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_ARGS 6

static napi_value throw_errno(napi_env env, long nr, int err) {
  napi_value msg, error, value;
  char text[64];
  snprintf(text, sizeof text, "syscall %ld failed: errno %d", nr, err);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_int64(env, nr, &value);
  napi_set_named_property(env, error, "nr", value);
  napi_throw(env, error);
  return NULL;
}

/* Converts one JS argument to a machine word. Strings are copied into *owned (freed by the caller). */
static int to_word(napi_env env, napi_value v, uintptr_t *out, char **owned) {
  napi_valuetype type;
  bool is;
  *owned = NULL;
  if (napi_typeof(env, v, &type) != napi_ok) return -1;
  switch (type) {
  case napi_undefined:
  case napi_null: *out = 0; return 0;
  case napi_boolean: { bool b; napi_get_value_bool(env, v, &b); *out = b; return 0; }
  case napi_number: { int64_t n; napi_get_value_int64(env, v, &n); *out = (uintptr_t)n; return 0; }
  case napi_bigint: { int64_t n; bool lossless; napi_get_value_bigint_int64(env, v, &n, &lossless); *out = (uintptr_t)n; return 0; }
  case napi_string: {
    size_t len;
    napi_get_value_string_utf8(env, v, NULL, 0, &len);
    *owned = malloc(len + 1);
    if (!*owned) return -1;
    napi_get_value_string_utf8(env, v, *owned, len + 1, &len);
    *out = (uintptr_t)*owned;
    return 0;
  }
  case napi_object: {
    void *data = NULL;
    size_t len;
    if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
      napi_typedarray_type t; napi_value ab; size_t off;
      napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off);
    } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
      napi_value ab; size_t off;
      napi_get_dataview_info(env, v, &len, &data, &ab, &off);
    } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
      napi_get_arraybuffer_info(env, v, &data, &len);
    } else {
      return -1;
    }
    *out = (uintptr_t)data;
    return 0;
  }
  default: return -1;
  }
}

static napi_value call_syscall(napi_env env, napi_callback_info info, int throw_on_failure) {
  size_t argc = MAX_ARGS + 1;
  napi_value argv[MAX_ARGS + 1];
  uintptr_t words[MAX_ARGS] = {0};
  char *owned[MAX_ARGS] = {0};
  int64_t nr;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int64(env, argv[0], &nr) != napi_ok) {
    napi_throw_type_error(env, NULL, "syscall(nr, ...args): nr must be a number");
    return NULL;
  }
  for (size_t i = 1; i < argc; i++) {
    if (to_word(env, argv[i], &words[i - 1], &owned[i - 1]) != 0) {
      for (size_t j = 0; j < MAX_ARGS; j++) free(owned[j]);
      napi_throw_type_error(env, NULL, "syscall: unsupported argument type");
      return NULL;
    }
  }
  errno = 0;
  long rc = syscall(nr, words[0], words[1], words[2], words[3], words[4], words[5]);
  int err = errno;
  for (size_t j = 0; j < MAX_ARGS; j++) free(owned[j]);
  if (rc == -1 && throw_on_failure) return throw_errno(env, nr, err);
  napi_value result;
  napi_create_int64(env, rc == -1 ? -(int64_t)err : rc, &result);
  return result;
}

static napi_value js_syscall(napi_env env, napi_callback_info info) {
  return call_syscall(env, info, 1);
}

static napi_value js_syscall_or_errno(napi_env env, napi_callback_info info) {
  return call_syscall(env, info, 0);
}

static napi_value js_address_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  uintptr_t word;
  char *owned;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_valuetype type;
  napi_typeof(env, arg, &type);
  if (argc != 1 || type != napi_object || to_word(env, arg, &word, &owned) != 0) {
    napi_throw_type_error(env, NULL, "addressOf(buffer): expects a Buffer, TypedArray or ArrayBuffer");
    return NULL;
  }
  napi_create_bigint_uint64(env, (uint64_t)word, &result);
  return result;
}

static void unmap_mapping(napi_env env, void *data, void *hint) {
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value js_mapping(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uintptr_t address;
  char *owned;
  int64_t length;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || napi_typeof(env, argv[0], &type) != napi_ok || (type != napi_bigint && type != napi_number)
      || to_word(env, argv[0], &address, &owned) != 0 || napi_get_value_int64(env, argv[1], &length) != napi_ok
      || address == 0 || length <= 0) {
    napi_throw_type_error(env, NULL, "mapping(address, length): a mapping's address and its positive length");
    return NULL;
  }
  if (napi_create_external_arraybuffer(env, (void *)address, (size_t)length, unmap_mapping, (void *)(uintptr_t)length, &result) != napi_ok) {
    napi_throw_error(env, NULL, "mapping: cannot create an external ArrayBuffer");
    return NULL;
  }
  return result;
}

/* Bytes of a TypedArray or DataView (not an ArrayBuffer: the callers pass views). */
static int view_bytes(napi_env env, napi_value v, unsigned char **data, size_t *bytes) {
  bool is;
  void *ptr = NULL;
  size_t length;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    if (napi_get_typedarray_info(env, v, &t, &length, &ptr, &ab, &off) != napi_ok) return -1;
    size_t unit;
    switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: unit = 1; break;
    case napi_int16_array: case napi_uint16_array: unit = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: unit = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: unit = 8; break;
    default: return -1;
    }
    *bytes = length * unit;
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, &length, &ptr, &ab, &off) != napi_ok) return -1;
    *bytes = length;
  } else {
    return -1;
  }
  *data = ptr;
  return 0;
}

/* fsverity.rst: the last block is zero-padded, so it is hashed as its bytes and then zeros up to the block size. */
static const unsigned char zeros[4096];

/* The salt is prepended to every block (fsverity.rst "salt ... prepended to every data or Merkle tree block"):
 * padded to whole compression blocks, it leaves the context with nothing buffered, so each block starts from a
 * copy of the context that has absorbed it. */
#define HASH_BLOCKS(NAME, CTX, INIT, UPDATE, FINAL, DIGEST)                                                      \
  static void NAME(const unsigned char *data, size_t size, size_t block_size, const unsigned char *salt,         \
                   size_t salt_size, unsigned char *out) {                                                       \
    CTX salted;                                                                                                  \
    INIT(&salted);                                                                                               \
    if (salt_size > 0) UPDATE(&salted, salt, salt_size);                                                         \
    for (size_t offset = 0; offset < size; offset += block_size, out += DIGEST) {                                \
      CTX ctx = salted;                                                                                          \
      size_t take = size - offset < block_size ? size - offset : block_size;                                     \
      UPDATE(&ctx, data + offset, take);                                                                         \
      for (size_t pad = block_size - take; pad > 0;) {                                                           \
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;                                                      \
        UPDATE(&ctx, zeros, n);                                                                                  \
        pad -= n;                                                                                                \
      }                                                                                                          \
      FINAL(out, &ctx);                                                                                          \
    }                                                                                                            \
  }
HASH_BLOCKS(hash_blocks_sha256, SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final, SHA256_DIGEST_LENGTH)
HASH_BLOCKS(hash_blocks_sha512, SHA512_CTX, SHA512_Init, SHA512_Update, SHA512_Final, SHA512_DIGEST_LENGTH)

/* fsverity-utils takes block sizes up to 2^30 (an int). */
#define MAX_BLOCK_SIZE ((int64_t)1 << 30)
/* sizeof(fsverity_descriptor.salt) is 32: padded, one compression block of either hash. */
#define MAX_PADDED_SALT 128

/* hashBlocks' arguments, checked. */
struct hash_args {
  unsigned char *data, *salt, *out;
  size_t size, salt_size, block_size, digest_size, blocks;
};

static void hash_blocks(const struct hash_args *a) {
  if (a->digest_size == SHA256_DIGEST_LENGTH) {
    hash_blocks_sha256(a->data, a->size, a->block_size, a->salt, a->salt_size, a->out);
  } else {
    hash_blocks_sha512(a->data, a->size, a->block_size, a->salt, a->salt_size, a->out);
  }
}

/* Checks hashBlocks' last four arguments (blockSize, algorithm, paddedSalt, out) for size bytes at data into *a;
 * on a bad one throws and returns -1. */
static int hash_parameters(napi_env env, napi_value *argv, unsigned char *data, size_t size, struct hash_args *a);

/* Checks hashBlocks' five arguments into *a; on a bad one throws and returns -1. */
static int hash_arguments(napi_env env, size_t argc, napi_value *argv, struct hash_args *a) {
  unsigned char *data;
  size_t size;
  if (argc != 5 || view_bytes(env, argv[0], &data, &size) != 0) {
    napi_throw_type_error(env, NULL, "hashBlocks(data, blockSize, algorithm, paddedSalt, out): data must be a TypedArray or DataView");
    return -1;
  }
  return hash_parameters(env, argv + 1, data, size, a);
}

static int hash_parameters(napi_env env, napi_value *argv, unsigned char *data, size_t size, struct hash_args *a) {
  unsigned char *salt, *out;
  size_t salt_size, out_size;
  int64_t block_size;
  char algorithm[8];
  size_t algorithm_length;
  napi_valuetype type;
  argv -= 1; /* numbered as in hashBlocks(data, blockSize, algorithm, paddedSalt, out) */
  if (napi_typeof(env, argv[1], &type) != napi_ok || type != napi_number || napi_get_value_int64(env, argv[1], &block_size) != napi_ok) {
    napi_throw_type_error(env, NULL, "hashBlocks: blockSize must be a number");
    return -1;
  }
  double exact;
  napi_get_value_double(env, argv[1], &exact);
  if (exact != (double)block_size || block_size < 1 || block_size > MAX_BLOCK_SIZE || (block_size & (block_size - 1)) != 0) {
    napi_throw_range_error(env, NULL, "hashBlocks: blockSize must be a power of 2 up to 2^30");
    return -1;
  }
  if (napi_typeof(env, argv[2], &type) != napi_ok || type != napi_string
      || napi_get_value_string_utf8(env, argv[2], algorithm, sizeof algorithm, &algorithm_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "hashBlocks: algorithm must be 'sha256' or 'sha512'");
    return -1;
  }
  size_t digest_size, unit;
  if (algorithm_length == 6 && strcmp(algorithm, "sha256") == 0) {
    digest_size = SHA256_DIGEST_LENGTH;
    unit = SHA256_CBLOCK;
  } else if (algorithm_length == 6 && strcmp(algorithm, "sha512") == 0) {
    digest_size = SHA512_DIGEST_LENGTH;
    unit = SHA512_CBLOCK;
  } else {
    napi_throw_range_error(env, NULL, "hashBlocks: algorithm must be 'sha256' or 'sha512'");
    return -1;
  }
  if (view_bytes(env, argv[3], &salt, &salt_size) != 0) {
    napi_throw_type_error(env, NULL, "hashBlocks: paddedSalt must be a TypedArray or DataView");
    return -1;
  }
  if (salt_size % unit != 0 || salt_size > MAX_PADDED_SALT) {
    napi_throw_range_error(env, NULL, "hashBlocks: paddedSalt must be empty or the salt zero-padded to the hash's compression block");
    return -1;
  }
  if (view_bytes(env, argv[4], &out, &out_size) != 0) {
    napi_throw_type_error(env, NULL, "hashBlocks: out must be a TypedArray or DataView");
    return -1;
  }
  size_t blocks = size / (size_t)block_size + (size % (size_t)block_size != 0);
  if (blocks > out_size / digest_size) {
    napi_throw_range_error(env, NULL, "hashBlocks: out is too small for the digests");
    return -1;
  }
  size_t needed = blocks * digest_size;
  /* Digests written over data still to be hashed (or over the salt) would change what is hashed. */
  if (needed > 0 && ((out < data + size && data < out + needed) || (out < salt + salt_size && salt < out + needed))) {
    napi_throw_range_error(env, NULL, "hashBlocks: out overlaps data or paddedSalt");
    return -1;
  }
  *a = (struct hash_args){ .data = data, .salt = salt, .out = out, .size = size, .salt_size = salt_size,
                           .block_size = (size_t)block_size, .digest_size = digest_size, .blocks = blocks };
  return 0;
}

static napi_value js_hash_blocks(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  struct hash_args a;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (hash_arguments(env, argc, argv, &a) != 0) return NULL;
  hash_blocks(&a);
  napi_create_double(env, (double)a.blocks, &result);
  return result;
}

/* hashBlocksAsync: the same hashing on a thread of libuv's pool, with no JavaScript (a worker thread would first
 * boot a Node environment: ~40 ms of CPU). The three views are referenced until the work completes, so that their
 * memory (a mapping the ArrayBuffer owns, for the image) stays mapped while it is read. */
struct hash_work {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref views[4];
  struct hash_args args;
  /* copyHashRangesAsync only: the source and where its ranges go, the shared claim counter and stop flag, each
   * range's bytes, the ranges done, the errno of a failed pread. */
  bool ranges;
  int source;
  unsigned char *destination;
  int error;
  int32_t *next, *stop, *lengths;
  size_t range_count, range_size, total;
  unsigned char *out_base;
  size_t done_ranges;
};

/* pread of size bytes at offset into to, until size or the end of the file; returns the bytes read, or -errno. */
static ssize_t pread_fully(int fd, unsigned char *to, size_t size, int64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, to + done, size - done, (off_t)(offset + (int64_t)done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

static void hash_work_execute(napi_env env, void *data) {
  struct hash_work *w = data;
  if (w->ranges) {
    /* Ranges claimed here, not handed out by the event loop's thread: a thread of the pool never waits for that
     * thread (busy with the TPM read) to give it the next range. Without a destination (a file only hashed), each
     * range is read into this thread's own buffer. */
    unsigned char *own = NULL;
    if (w->destination == NULL && (own = malloc(w->range_size)) == NULL) {
      w->error = ENOMEM;
      __atomic_store_n(w->stop, 1, __ATOMIC_SEQ_CST);
      return;
    }
    for (;;) {
      if (__atomic_load_n(w->stop, __ATOMIC_SEQ_CST) != 0) break;
      int32_t index = __atomic_fetch_add(w->next, 1, __ATOMIC_SEQ_CST);
      if (index < 0 || (size_t)index >= w->range_count) break;
      size_t offset = (size_t)index * w->range_size;
      size_t want = w->total - offset < w->range_size ? w->total - offset : w->range_size;
      unsigned char *to = own != NULL ? own : w->destination + offset;
      ssize_t got = pread_fully(w->source, to, want, (int64_t)offset);
      if (got < 0) {
        w->error = (int)-got;
        __atomic_store_n(w->stop, 1, __ATOMIC_SEQ_CST);
        break;
      }
      struct hash_args a = w->args;
      a.data = to;
      a.size = (size_t)got;
      a.blocks = a.size / a.block_size + (a.size % a.block_size != 0);
      a.out = w->out_base + offset / a.block_size * a.digest_size;
      hash_blocks(&a);
      __atomic_store_n(&w->lengths[index], (int32_t)got, __ATOMIC_SEQ_CST);
      w->done_ranges++;
    }
    free(own);
    return;
  }
  hash_blocks(&w->args);
}

static void hash_work_complete(napi_env env, napi_status status, void *data) {
  struct hash_work *w = data;
  napi_value result;
  for (int i = 0; i < 4; i++) {
    if (w->views[i] != NULL) napi_delete_reference(env, w->views[i]);
  }
  if (status == napi_ok && w->error != 0) {
    napi_value message, code;
    char text[64];
    snprintf(text, sizeof text, "pread failed: errno %d", w->error);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_create_int32(env, w->error, &code);
    napi_set_named_property(env, result, "errno", code);
    napi_reject_deferred(env, w->deferred, result);
  } else if (status == napi_ok) {
    napi_create_double(env, w->ranges ? (double)w->done_ranges : (double)w->args.blocks, &result);
    napi_resolve_deferred(env, w->deferred, result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "hashBlocksAsync: the work was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, w->deferred, result);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

/* Queues the hashing of a, or the ranges' copy and hashing when ranges is given; views[0..3] (the JavaScript
 * arrays whose memory the work reads or writes; NULL for none) are referenced until it ends. */
static napi_value queue_hash_work(napi_env env, napi_value *views, const struct hash_args *a, const struct hash_work *ranges) {
  napi_value promise, name;
  struct hash_work *w = calloc(1, sizeof *w);
  if (w == NULL) {
    napi_throw_error(env, "ENOMEM", "hashBlocksAsync: out of memory");
    return NULL;
  }
  if (ranges != NULL) *w = *ranges;
  w->args = *a;
  for (int i = 0; i < 4; i++) {
    if (views[i] != NULL) napi_create_reference(env, views[i], 1, &w->views[i]);
  }
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "sealroot:hashBlocks", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, hash_work_execute, hash_work_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

static napi_value js_hash_blocks_async(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  struct hash_args a;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (hash_arguments(env, argc, argv, &a) != 0) return NULL;
  napi_value views[4] = { argv[0], argv[3], argv[4], NULL };
  return queue_hash_work(env, views, &a, NULL);
}

/* A non-negative integer argument below 2^53 (an fd, an offset, an address as the mmap syscall returns it). */
static int exact_integer(napi_env env, napi_value v, int64_t max, int64_t *out) {
  napi_valuetype type;
  double value;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number || napi_get_value_double(env, v, &value) != napi_ok) return -1;
  if (!(value >= 0 && value <= (double)max) || value != (double)(int64_t)value) return -1;
  *out = (int64_t)value;
  return 0;
}

/* An Int32Array's elements (for the shared claim counter, stop flag and lengths). */
static int int32_elements(napi_env env, napi_value v, int32_t **data, size_t *count) {
  bool is;
  napi_typedarray_type type;
  void *ptr;
  napi_value buffer;
  size_t offset;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is
      || napi_get_typedarray_info(env, v, &type, count, &ptr, &buffer, &offset) != napi_ok || type != napi_int32_array) {
    return -1;
  }
  *data = ptr;
  return 0;
}

static napi_value js_copy_hash_ranges_async(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  int32_t *control, *lengths;
  size_t control_count, length_count;
  int64_t next, stop, source, destination, size, range_size;
  struct hash_args a;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 12 || int32_elements(env, argv[0], &control, &control_count) != 0
      || exact_integer(env, argv[1], INT32_MAX, &next) != 0 || exact_integer(env, argv[2], INT32_MAX, &stop) != 0
      || (size_t)next >= control_count || (size_t)stop >= control_count || next == stop
      || int32_elements(env, argv[3], &lengths, &length_count) != 0
      || exact_integer(env, argv[4], INT32_MAX, &source) != 0 || exact_integer(env, argv[5], INT64_C(1) << 53, &destination) != 0
      || exact_integer(env, argv[6], INT64_C(1) << 53, &size) != 0
      || exact_integer(env, argv[7], INT32_MAX, &range_size) != 0 || range_size == 0) {
    napi_throw_type_error(env, NULL, "copyHashRangesAsync(control, next, stop, lengths, source, destination, size, rangeSize, "
                          "blockSize, algorithm, paddedSalt, out): bad control, slots, lengths or integers");
    return NULL;
  }
  size_t ranges = (size_t)((size + range_size - 1) / range_size);
  if (ranges > INT32_MAX) {
    napi_throw_range_error(env, NULL, "copyHashRangesAsync: more ranges than a claim counter holds");
    return NULL;
  }
  if (length_count < ranges) {
    napi_throw_range_error(env, NULL, "copyHashRangesAsync: lengths holds fewer elements than there are ranges");
    return NULL;
  }
  /* The whole size checked against out at once (hash_parameters), as one hashBlocks of it would be; without a
   * destination, the buffers are the threads' own (no overlap with out to check). */
  unsigned char *at = (unsigned char *)(uintptr_t)destination;
  if (hash_parameters(env, argv + 8, at, at == NULL ? 0 : (size_t)size, &a) != 0) return NULL;
  if (at == NULL) {
    size_t blocks = (size_t)size / a.block_size + ((size_t)size % a.block_size != 0);
    unsigned char *out;
    size_t out_size;
    if (view_bytes(env, argv[11], &out, &out_size) != 0 || blocks > out_size / a.digest_size) {
      napi_throw_range_error(env, NULL, "hashBlocks: out is too small for the digests");
      return NULL;
    }
  }
  if (range_size % (int64_t)a.block_size != 0) {
    napi_throw_range_error(env, NULL, "copyHashRangesAsync: rangeSize is not a multiple of blockSize");
    return NULL;
  }
  struct hash_work work = { .ranges = true, .source = (int)source, .destination = at, .next = control + next,
                            .stop = control + stop, .lengths = lengths, .range_count = ranges, .range_size = (size_t)range_size,
                            .total = (size_t)size, .out_base = a.out };
  napi_value views[4] = { argv[0], argv[3], argv[10], argv[11] };
  return queue_hash_work(env, views, &a, &work);
}

/* The parts are checked before anything is hashed; a call with more parts than fit on the stack allocates. */
#define DIGEST_STACK_PARTS 16
#define DIGEST_OVER(CTX, INIT, UPDATE, FINAL)                                                                    \
  do {                                                                                                           \
    CTX ctx;                                                                                                     \
    INIT(&ctx);                                                                                                  \
    for (size_t i = 0; i < parts; i++) UPDATE(&ctx, data[i], sizes[i]);                                          \
    FINAL(out, &ctx);                                                                                            \
  } while (0)

static napi_value js_digest(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, NULL, NULL, NULL);
  napi_value stack_argv[DIGEST_STACK_PARTS + 1];
  unsigned char *stack_data[DIGEST_STACK_PARTS];
  size_t stack_sizes[DIGEST_STACK_PARTS];
  napi_value *argv = stack_argv;
  unsigned char **data = stack_data;
  size_t *sizes = stack_sizes;
  napi_value result = NULL;
  if (argc > DIGEST_STACK_PARTS + 1) {
    argv = malloc(argc * sizeof *argv);
    data = malloc((argc - 1) * sizeof *data);
    sizes = malloc((argc - 1) * sizeof *sizes);
    if (argv == NULL || data == NULL || sizes == NULL) {
      napi_throw_error(env, NULL, "digest: out of memory");
      goto done;
    }
  }
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char algorithm[8];
  size_t algorithm_length;
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string
      || napi_get_value_string_utf8(env, argv[0], algorithm, sizeof algorithm, &algorithm_length) != napi_ok) {
    napi_throw_type_error(env, NULL, "digest(algorithm, ...data): algorithm must be 'sha1', 'sha256', 'sha384' or 'sha512'");
    goto done;
  }
  size_t parts = argc - 1;
  for (size_t i = 0; i < parts; i++) {
    if (view_bytes(env, argv[i + 1], &data[i], &sizes[i]) != 0) {
      napi_throw_type_error(env, NULL, "digest(algorithm, ...data): data must be TypedArrays or DataViews");
      goto done;
    }
  }
  unsigned char out[SHA512_DIGEST_LENGTH];
  size_t size;
  if (algorithm_length == 4 && strcmp(algorithm, "sha1") == 0) {
    DIGEST_OVER(SHA_CTX, SHA1_Init, SHA1_Update, SHA1_Final);
    size = SHA_DIGEST_LENGTH;
  } else if (algorithm_length == 6 && strcmp(algorithm, "sha256") == 0) {
    DIGEST_OVER(SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final);
    size = SHA256_DIGEST_LENGTH;
  } else if (algorithm_length == 6 && strcmp(algorithm, "sha384") == 0) {
    DIGEST_OVER(SHA512_CTX, SHA384_Init, SHA384_Update, SHA384_Final);
    size = SHA384_DIGEST_LENGTH;
  } else if (algorithm_length == 6 && strcmp(algorithm, "sha512") == 0) {
    DIGEST_OVER(SHA512_CTX, SHA512_Init, SHA512_Update, SHA512_Final);
    size = SHA512_DIGEST_LENGTH;
  } else {
    napi_throw_range_error(env, NULL, "digest: algorithm must be 'sha1', 'sha256', 'sha384' or 'sha512'");
    goto done;
  }
  if (napi_create_buffer_copy(env, size, out, NULL, &result) != napi_ok) {
    napi_throw_error(env, NULL, "digest: cannot create the result Buffer");
    result = NULL;
  }
done:
  if (argv != stack_argv) {
    free(argv);
    free(data);
    free(sizes);
  }
  return result;
}

static napi_value js_equal_constant_time(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  unsigned char *a, *b;
  size_t a_size, b_size;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || view_bytes(env, argv[0], &a, &a_size) != 0 || view_bytes(env, argv[1], &b, &b_size) != 0) {
    napi_throw_type_error(env, NULL, "equalConstantTime(a, b): a and b must be TypedArrays or DataViews");
    return NULL;
  }
  napi_get_boolean(env, a_size == b_size && (a_size == 0 || CRYPTO_memcmp(a, b, a_size) == 0), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "syscall", NAPI_AUTO_LENGTH, js_syscall, NULL, &fn);
  napi_set_named_property(env, exports, "syscall", fn);
  napi_create_function(env, "syscallOrErrno", NAPI_AUTO_LENGTH, js_syscall_or_errno, NULL, &fn);
  napi_set_named_property(env, exports, "syscallOrErrno", fn);
  napi_create_function(env, "addressOf", NAPI_AUTO_LENGTH, js_address_of, NULL, &fn);
  napi_set_named_property(env, exports, "addressOf", fn);
  napi_create_function(env, "mapping", NAPI_AUTO_LENGTH, js_mapping, NULL, &fn);
  napi_set_named_property(env, exports, "mapping", fn);
  napi_create_function(env, "copyHashRangesAsync", NAPI_AUTO_LENGTH, js_copy_hash_ranges_async, NULL, &fn);
  napi_set_named_property(env, exports, "copyHashRangesAsync", fn);
  napi_create_function(env, "hashBlocks", NAPI_AUTO_LENGTH, js_hash_blocks, NULL, &fn);
  napi_set_named_property(env, exports, "hashBlocks", fn);
  napi_create_function(env, "hashBlocksAsync", NAPI_AUTO_LENGTH, js_hash_blocks_async, NULL, &fn);
  napi_set_named_property(env, exports, "hashBlocksAsync", fn);
  napi_create_function(env, "digest", NAPI_AUTO_LENGTH, js_digest, NULL, &fn);
  napi_set_named_property(env, exports, "digest", fn);
  napi_create_function(env, "equalConstantTime", NAPI_AUTO_LENGTH, js_equal_constant_time, NULL, &fn);
  napi_set_named_property(env, exports, "equalConstantTime", fn);
  return exports;
}
