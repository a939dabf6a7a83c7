/*
 * fleetkey_ecdsa: ECDSA verification over a raw public point, for CSR proofs of possession.
 *
 * Why (docs/adr/0034): node:crypto can only verify with a KeyObject, and OpenSSL 3.0 builds one
 * per key through its decoder or a fresh EC_GROUP plus a provider export — ~190 µs of CPU per
 * P-256 key on these machines, twice the ECDSA verification itself. Here the curve groups and
 * digests are made once per Node environment, and each call does only the per-key work.
 *
 * Invariants:
 * - Same verdicts as node:crypto's `verify(hash, data, key, signature)` with a DER signature: the
 *   digest is computed by OpenSSL, and ECDSA_verify() is the function OpenSSL's own provider calls
 *   (strict DER: the signature must re-encode to the same bytes, nothing after it).
 * - Returns 1 (valid), 0 (signature does not verify), -1 (the point is not a point of the curve,
 *   node:crypto refuses such a key on import). Arguments of the wrong type or size throw TypeError.
 * - Reads its inputs only; holds no state across calls but the per-environment groups and digests.
 * - Links against the OpenSSL inside the node binary (its headers ship with node): no second
 *   libcrypto in the process.
 */
#define NAPI_VERSION 8
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY: the legacy API skips the provider fetches per call */
#include <node_api.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <stdlib.h>

enum { CURVES = 3, HASHES = 3 };
static const int CURVE_NIDS[CURVES] = { NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1 };
static const size_t FIELD_BYTES[CURVES] = { 32, 48, 66 };
static const char *const HASH_NAMES[HASHES] = { "SHA2-256", "SHA2-384", "SHA2-512" };

typedef struct {
  EC_GROUP *groups[CURVES];
  EVP_MD *digests[HASHES];
} Instance;

static void instance_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Instance *inst = data;
  for (int i = 0; i < CURVES; i++) EC_GROUP_free(inst->groups[i]);
  for (int i = 0; i < HASHES; i++) EVP_MD_free(inst->digests[i]);
  free(inst);
}

static napi_value type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static int get_index(napi_env env, napi_value value, int32_t limit, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok && *out >= 0 && *out < limit;
}

static int get_bytes(napi_env env, napi_value value, const unsigned char **data, size_t *length) {
  bool is_buffer = false;
  void *ptr = NULL;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return 0;
  if (napi_get_buffer_info(env, value, &ptr, length) != napi_ok) return 0;
  *data = ptr != NULL ? ptr : (const unsigned char *)"";
  return 1;
}

/* verify(curveIndex, hashIndex, point, data, signatureDer) -> 1 | 0 | -1 */
static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  Instance *inst = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) return type_error(env, "verify takes 5 arguments");
  if (napi_get_instance_data(env, (void **)&inst) != napi_ok || inst == NULL) return type_error(env, "module not initialised");
  int32_t curve, hash;
  const unsigned char *point, *data, *sig;
  size_t point_len, data_len, sig_len;
  if (!get_index(env, argv[0], CURVES, &curve)) return type_error(env, "curve index out of range");
  if (!get_index(env, argv[1], HASHES, &hash)) return type_error(env, "hash index out of range");
  if (!get_bytes(env, argv[2], &point, &point_len) || !get_bytes(env, argv[3], &data, &data_len) || !get_bytes(env, argv[4], &sig, &sig_len)) {
    return type_error(env, "point, data and signature must be Buffers");
  }
  if (point_len != 1 + 2 * FIELD_BYTES[curve] || point[0] != 0x04) return type_error(env, "point must be uncompressed and of the curve's size");
  if (sig_len > 1024) return type_error(env, "signature too long");

  int32_t result = 0;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EC_KEY *key = EC_KEY_new();
  EC_POINT *pub = NULL;
  if (key == NULL || EC_KEY_set_group(key, inst->groups[curve]) != 1) goto internal;
  pub = EC_POINT_new(inst->groups[curve]);
  if (pub == NULL) goto internal;
  if (EC_POINT_oct2point(inst->groups[curve], pub, point, point_len, NULL) != 1 || EC_KEY_set_public_key(key, pub) != 1) {
    result = -1; /* not on the curve */
    goto done;
  }
  if (EVP_Digest(data, data_len, digest, &digest_len, inst->digests[hash], NULL) != 1) goto internal;
  result = ECDSA_verify(0, digest, (int)digest_len, sig, (int)sig_len, key) == 1 ? 1 : 0;
done:
  EC_POINT_free(pub);
  EC_KEY_free(key);
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
internal:
  EC_POINT_free(pub);
  EC_KEY_free(key);
  napi_throw_error(env, "ERR_OPENSSL", "OpenSSL could not set up an ECDSA verification");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  Instance *inst = calloc(1, sizeof(Instance));
  if (inst == NULL) {
    napi_throw_error(env, "ERR_OPENSSL", "out of memory");
    return NULL;
  }
  int ok = 1;
  for (int i = 0; i < CURVES; i++) ok = ok && (inst->groups[i] = EC_GROUP_new_by_curve_name(CURVE_NIDS[i])) != NULL;
  for (int i = 0; i < HASHES; i++) ok = ok && (inst->digests[i] = EVP_MD_fetch(NULL, HASH_NAMES[i], NULL)) != NULL;
  if (!ok || napi_set_instance_data(env, inst, instance_free, NULL) != napi_ok) {
    instance_free(env, inst, NULL);
    napi_throw_error(env, "ERR_OPENSSL", "OpenSSL has no P-256/P-384/P-521 or SHA-2 here");
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "verify", NAPI_AUTO_LENGTH, verify, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "verify", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
