/* The C API without a network: the shared conformance vectors (addresses, error kinds and the
 * inputs that raise them, the datagrams of reliable channels, manifests), configuration, keys,
 * the refusals of file transfers, and misuse of the API itself.
 * Usage: test_api <tests/conformance/vectors directory> */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static const char *vectors_dir;

static json_t *load_vectors(const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", vectors_dir, file);
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    if (!root) {
        fprintf(stderr, "cannot read %s: %s\n", path, error.text);
        exit(2);
    }
    return root;
}

/* The status of each error kind, by the name the vectors give in their "c" column. */
static const struct {
    const char *constant;
    SixcastStatus status;
} KIND_STATUSES[] = {
    {"SIXCAST_STATUS_INVALID_NAME", SIXCAST_STATUS_INVALID_NAME},
    {"SIXCAST_STATUS_INVALID_CONFIG", SIXCAST_STATUS_INVALID_CONFIG},
    {"SIXCAST_STATUS_INVALID_ADDRESS", SIXCAST_STATUS_INVALID_ADDRESS},
    {"SIXCAST_STATUS_UNKNOWN_INTERFACE", SIXCAST_STATUS_UNKNOWN_INTERFACE},
    {"SIXCAST_STATUS_MESSAGE_TOO_LARGE", SIXCAST_STATUS_MESSAGE_TOO_LARGE},
    {"SIXCAST_STATUS_MALFORMED", SIXCAST_STATUS_MALFORMED},
    {"SIXCAST_STATUS_TIMEOUT", SIXCAST_STATUS_TIMEOUT},
    {"SIXCAST_STATUS_CLOSED", SIXCAST_STATUS_CLOSED},
    {"SIXCAST_STATUS_IO", SIXCAST_STATUS_IO},
    {"SIXCAST_STATUS_UNSUPPORTED", SIXCAST_STATUS_UNSUPPORTED},
};
#define KIND_COUNT (sizeof KIND_STATUSES / sizeof KIND_STATUSES[0])

/* The status of the kind named `name` ("Timeout"), or -1; the names are sixcast_status_name's. */
static int status_of_kind(const char *name) {
    for (size_t i = 0; i < KIND_COUNT; i++) {
        if (strcmp(sixcast_status_name(KIND_STATUSES[i].status), name) == 0) {
            return (int)KIND_STATUSES[i].status;
        }
    }
    return -1;
}

static void test_error_kinds(json_t *errors) {
    json_t *kinds = json_object_get(errors, "kinds");
    CHECK(json_array_size(kinds) == KIND_COUNT, "%zu kinds in the vectors", json_array_size(kinds));
    size_t index;
    json_t *kind;
    json_array_foreach(kinds, index, kind) {
        const char *name = json_string_value(json_object_get(kind, "name"));
        const char *constant = json_string_value(json_object_get(kind, "c"));
        int expected = -1;
        for (size_t i = 0; i < KIND_COUNT; i++) {
            if (constant && strcmp(KIND_STATUSES[i].constant, constant) == 0) {
                expected = (int)KIND_STATUSES[i].status;
            }
        }
        CHECK(expected >= 0, "no status constant %s", constant ? constant : "(none)");
        SixcastError *error = NULL;
        SixcastStatus raised = sixcast_raise_error_kind(name, &error);
        CHECK((int)raised == expected, "%s raised %s", name, sixcast_status_name(raised));
        CHECK(sixcast_error_status(error) == raised, "the error holds its status");
        CHECK(strstr(sixcast_error_message(error), name) != NULL, "message: %s",
              sixcast_error_message(error));
        CHECK(strcmp(sixcast_status_name(raised), name) == 0, "status name of %s", name);
        sixcast_error_free(error);
    }
    CHECK_STATUS(sixcast_raise_error_kind("NoSuchKind", &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK(strcmp(sixcast_status_name(SIXCAST_STATUS_OK), "Ok") == 0, "Ok");
    CHECK(strcmp(sixcast_status_name(-5), "Unknown") == 0, "an unknown value");
}

/* The channel name of a vector case: `name_utf8`, or `name_repeat` {byte_hex, count}. */
static unsigned char *case_name(json_t *entry, size_t *len) {
    json_t *repeat = json_object_get(entry, "name_repeat");
    if (repeat) {
        *len = (size_t)json_integer_value(json_object_get(repeat, "count"));
        unsigned char *name = malloc(*len ? *len : 1);
        memset(name, (int)strtol(json_string_value(json_object_get(repeat, "byte_hex")), NULL, 16),
               *len);
        return name;
    }
    const char *hex = json_string_value(json_object_get(entry, "name_hex"));
    if (!hex) {
        hex = "";
    }
    *len = strlen(hex) / 2;
    unsigned char *name = malloc(*len ? *len : 1);
    for (size_t i = 0; i < *len; i++) {
        char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
        name[i] = (unsigned char)strtol(pair, NULL, 16);
    }
    return name;
}

static const char *text_field(json_t *entry, const char *field) {
    return json_string_value(json_object_get(entry, field));
}

/* Whether two texts are the same IPv6 address. */
static int same_address(const char *a, const char *b) {
    unsigned char x[16], y[16];
    return a && b && inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1 &&
           memcmp(x, y, 16) == 0;
}

/* The group of a case's name, or NULL with the status in *status. */
static char *group_of(json_t *entry, SixcastStatus *status) {
    size_t len;
    unsigned char *name = case_name(entry, &len);
    char *address = NULL;
    *status = sixcast_group_address(name, len, text_field(entry, "profile"), text_field(entry, "rp"),
                                    text_field(entry, "scope"), &address, NULL);
    free(name);
    return address;
}

static void test_addresses(json_t *addresses) {
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(addresses, "cases"), index, entry) {
        SixcastStatus status;
        char *group = group_of(entry, &status);
        CHECK(status == SIXCAST_STATUS_OK && same_address(group, text_field(entry, "address")),
              "case %zu: %s, expected %s", index, group ? group : sixcast_status_name(status),
              text_field(entry, "address"));
        const char *relayed_expected = text_field(entry, "relayed_address");
        char *relayed = NULL;
        status = sixcast_relayed_address(group ? group : "::", text_field(entry, "profile"),
                                         text_field(entry, "rp"), &relayed, NULL);
        if (relayed_expected) {
            CHECK(status == SIXCAST_STATUS_OK && same_address(relayed, relayed_expected),
                  "case %zu relayed: %s", index, relayed ? relayed : sixcast_status_name(status));
        } else {
            CHECK(status == SIXCAST_STATUS_UNSUPPORTED, "case %zu has no relayed form: %s", index,
                  sixcast_status_name(status));
        }
        uint16_t port = 0;
        CHECK_OK(sixcast_default_port(text_field(entry, "profile"), text_field(entry, "rp"), &port,
                                      &err));
        CHECK(port == json_integer_value(json_object_get(entry, "port")), "case %zu port %u", index,
              port);
        sixcast_string_free(group);
        sixcast_string_free(relayed);
    }
    json_array_foreach(json_object_get(addresses, "invalid"), index, entry) {
        SixcastStatus status;
        char *group = group_of(entry, &status);
        CHECK((int)status == status_of_kind(text_field(entry, "error")) && group == NULL,
              "invalid case %zu (%s): %s", index, text_field(entry, "why"),
              sixcast_status_name(status));
    }
}

/* Applies a case's `set` object to a configuration: numbers as decimal text, lists item by item. */
static void apply_settings(SixcastConfig *config, json_t *settings) {
    const char *field;
    json_t *value;
    json_object_foreach(settings, field, value) {
        if (json_is_array(value)) {
            size_t i;
            json_t *item;
            json_array_foreach(value, i, item) {
                CHECK_OK(sixcast_config_add(config, field, json_string_value(item), &err));
            }
        } else {
            char text[32];
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(value));
            CHECK_OK(sixcast_config_set(config, field, text, &err));
        }
    }
}

/* Runs an error case; returns its status, or -1 for an op the C API does not have. */
static int run_error_case(json_t *entry) {
    const char *op = text_field(entry, "op");
    if (strcmp(op, "group_address") == 0) {
        SixcastStatus status;
        sixcast_string_free(group_of(entry, &status));
        return (int)status;
    }
    if (strcmp(op, "parse_profile") == 0) {
        uint16_t port;
        return (int)sixcast_default_port(text_field(entry, "profile"), text_field(entry, "rp"),
                                         &port, NULL);
    }
    if (strcmp(op, "parse_scope") == 0) {
        char *group = NULL;
        SixcastStatus status = sixcast_group_address((const uint8_t *)"x", 1, NULL, NULL,
                                                     text_field(entry, "scope"), &group, NULL);
        sixcast_string_free(group);
        return (int)status;
    }
    if (strcmp(op, "config") == 0 || strcmp(op, "open_context") == 0) {
        SixcastConfig *config = sixcast_config_new();
        apply_settings(config, json_object_get(entry, "set"));
        SixcastStatus status;
        if (strcmp(op, "config") == 0) {
            status = sixcast_config_validate(config, NULL);
        } else {
            SixcastContext *context = NULL;
            status = sixcast_context_open(config, &context, NULL);
            sixcast_context_free(context);
        }
        sixcast_config_free(config);
        return (int)status;
    }
    return -1;
}

static void test_error_cases(json_t *errors) {
    size_t index, ran = 0, codec = 0;
    json_t *entry;
    json_array_foreach(json_object_get(errors, "cases"), index, entry) {
        const char *op = text_field(entry, "op");
        int status = run_error_case(entry);
        if (status < 0) {
            /* The datagram codec (decode, pack) is for tools and tests; C has no use for it. */
            CHECK(strcmp(op, "decode") == 0 || strcmp(op, "pack") == 0, "unknown op %s", op);
            codec++;
            continue;
        }
        ran++;
        const char *kind = text_field(entry, "error");
        int expected = kind ? status_of_kind(kind) : (int)SIXCAST_STATUS_OK;
        CHECK(status == expected, "case %zu (%s): %s, expected %s", index, op,
              sixcast_status_name(status), kind ? kind : "success");
    }
    printf("error cases: %zu run, %zu of the datagram codec not in the C API\n", ran, codec);
    CHECK(ran >= 15, "only %zu error cases ran", ran);
}

/* The bytes of a lowercase hex string (malloc'd, at least one byte), their count in *len. */
static unsigned char *hex_bytes(const char *hex, size_t *len) {
    *len = hex ? strlen(hex) / 2 : 0;
    unsigned char *bytes = malloc(*len ? *len : 1);
    for (size_t i = 0; i < *len; i++) {
        char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
        bytes[i] = (unsigned char)strtol(pair, NULL, 16);
    }
    return bytes;
}

/* A decoder that gives JSON text: sixcast_decode_repair or sixcast_decode_manifest. */
typedef SixcastStatus (*JsonDecoder)(const uint8_t *, size_t, char **, SixcastError **);

/* Decodes a hex datagram with `decode`; returns the status, the parsed JSON in *decoded (NULL
 * on failure or when the text is not JSON) and the error in *error. */
static SixcastStatus decode_hex(JsonDecoder decode, const char *hex, json_t **decoded,
                                SixcastError **error) {
    size_t len;
    unsigned char *datagram = hex_bytes(hex, &len);
    char *text = NULL;
    *error = NULL;
    SixcastStatus status = decode(datagram, len, &text, error);
    free(datagram);
    *decoded = NULL;
    if (text) {
        json_error_t json_error;
        *decoded = json_loads(text, 0, &json_error);
        CHECK(*decoded != NULL, "not JSON (%s): %s", json_error.text, text);
    }
    CHECK((status == SIXCAST_STATUS_OK) == (text != NULL), "JSON exactly on success: %s",
          sixcast_status_name(status));
    sixcast_string_free(text);
    return status;
}

/* Every decode case of repair.json: valid ones give the case's `decoded` object, field by field
 * (json_equal), invalid ones its error kind and `(reason)` in the message. */
static void test_repair_decode(json_t *repair) {
    size_t index, valid = 0, invalid = 0;
    int types = 0;
    const char *names[] = {"sequenced", "parity", "nack", "status"};
    json_t *entry;
    json_array_foreach(json_object_get(repair, "decode"), index, entry) {
        const char *name = text_field(entry, "name");
        json_t *expected = json_object_get(entry, "decoded");
        json_t *decoded;
        SixcastError *error;
        SixcastStatus status =
            decode_hex(sixcast_decode_repair, text_field(entry, "datagram"), &decoded, &error);
        if (expected) {
            valid++;
            for (int i = 0; i < 4; i++) {
                if (strcmp(text_field(expected, "type"), names[i]) == 0) {
                    types |= 1 << i;
                }
            }
            CHECK(status == SIXCAST_STATUS_OK, "%s: %s (%s)", name, sixcast_status_name(status),
                  sixcast_error_message(error));
            char *got = decoded ? json_dumps(decoded, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
            char *want = json_dumps(expected, JSON_SORT_KEYS | JSON_COMPACT);
            CHECK(decoded && json_equal(decoded, expected), "%s: %s, expected %s", name,
                  got ? got : "(nothing)", want);
            free(got);
            free(want);
        } else {
            invalid++;
            const char *kind = text_field(entry, "error");
            const char *reason = text_field(entry, "reason");
            char in_parentheses[64];
            snprintf(in_parentheses, sizeof in_parentheses, "(%s)", reason ? reason : "?");
            CHECK((int)status == status_of_kind(kind), "%s: %s, expected %s", name,
                  sixcast_status_name(status), kind);
            CHECK(strstr(sixcast_error_message(error), in_parentheses) != NULL,
                  "%s: message %s, expected the reason %s", name, sixcast_error_message(error),
                  in_parentheses);
        }
        json_decref(decoded);
        sixcast_error_free(error);
    }
    printf("repair decode cases: %zu valid, %zu invalid\n", valid, invalid);
    CHECK(types == 15, "the valid cases cover every type (mask %d)", types);
    CHECK(invalid > 0, "some cases are invalid");
}

/* The parity section: each PARITY datagram a sender answers with decodes as symbol i of the
 * block starting at packet 0, as long as the longest packet plus 2, rounded up to even. */
static void test_repair_parity(json_t *repair) {
    size_t index, cases = 0;
    json_t *entry;
    json_array_foreach(json_object_get(repair, "parity"), index, entry) {
        cases++;
        const char *name = text_field(entry, "name");
        size_t longest = 0, i;
        json_t *item;
        json_array_foreach(json_object_get(entry, "packets"), i, item) {
            size_t len = strlen(json_string_value(item)) / 2;
            longest = len > longest ? len : longest;
        }
        size_t symbol_len = (longest + 2 + 1) / 2 * 2;
        json_t *parity = json_object_get(entry, "parity");
        CHECK(json_array_size(parity) > 0, "%s: no parity", name);
        json_array_foreach(parity, i, item) {
            json_t *decoded;
            SixcastError *error;
            SixcastStatus status =
                decode_hex(sixcast_decode_repair, json_string_value(item), &decoded, &error);
            CHECK(status == SIXCAST_STATUS_OK, "%s parity %zu: %s (%s)", name, i,
                  sixcast_status_name(status), sixcast_error_message(error));
            const char *type = text_field(decoded, "type");
            const char *sender = text_field(decoded, "sender");
            const char *symbol = text_field(decoded, "symbol");
            CHECK(type && strcmp(type, "parity") == 0, "%s parity %zu: type %s", name, i, type);
            CHECK(sender && strcmp(sender, text_field(entry, "sender")) == 0,
                  "%s parity %zu: sender %s", name, i, sender);
            CHECK(json_is_integer(json_object_get(decoded, "block_start")) &&
                      json_integer_value(json_object_get(decoded, "block_start")) == 0,
                  "%s parity %zu: block_start", name, i);
            CHECK(json_is_integer(json_object_get(decoded, "block_len")) &&
                      json_integer_value(json_object_get(decoded, "block_len")) ==
                          json_integer_value(json_object_get(entry, "block_len")),
                  "%s parity %zu: block_len %lld", name, i,
                  (long long)json_integer_value(json_object_get(decoded, "block_len")));
            CHECK(json_is_integer(json_object_get(decoded, "index")) &&
                      json_integer_value(json_object_get(decoded, "index")) == (json_int_t)i,
                  "%s parity %zu: index %lld", name, i,
                  (long long)json_integer_value(json_object_get(decoded, "index")));
            CHECK(symbol && strlen(symbol) == 2 * symbol_len, "%s parity %zu: symbol of %zu hex digits",
                  name, i, symbol ? strlen(symbol) : 0);
            json_decref(decoded);
            sixcast_error_free(error);
        }
    }
    CHECK(cases > 0, "no parity cases");
}

/* A datagram of the message layer is no repair datagram; the pointers are checked. */
static void test_repair_misuse(json_t *repair) {
    /* The numbered packet, and the datagram it carries: a batch of messages (type 1). */
    json_t *sequenced = NULL;
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(repair, "decode"), index, entry) {
        json_t *decoded = json_object_get(entry, "decoded");
        if (!sequenced && decoded && strcmp(text_field(decoded, "type"), "sequenced") == 0) {
            sequenced = entry;
        }
    }
    CHECK(sequenced != NULL, "no sequenced case");
    if (!sequenced) {
        return;
    }
    json_t *decoded;
    SixcastError *error;
    const char *inner = text_field(json_object_get(sequenced, "decoded"), "inner");
    SixcastStatus status = decode_hex(sixcast_decode_repair, inner, &decoded, &error);
    CHECK(status == SIXCAST_STATUS_MALFORMED, "a batch decodes as %s", sixcast_status_name(status));
    CHECK(strstr(sixcast_error_message(error), "(unknown_type)") != NULL, "a batch: %s",
          sixcast_error_message(error));
    json_decref(decoded);
    sixcast_error_free(error);
    size_t len;
    unsigned char *datagram = hex_bytes(text_field(sequenced, "datagram"), &len);
    char *json = NULL;
    CHECK_STATUS(sixcast_decode_repair(datagram, len, NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_decode_repair(NULL, len, &json, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_decode_repair(NULL, 0, &json, &err), SIXCAST_STATUS_MALFORMED);
    CHECK(json == NULL, "nothing stored on failure");
    CHECK_OK(sixcast_decode_repair(datagram, len, &json, &err));
    CHECK(json != NULL, "stored on success");
    sixcast_string_free(json);
    free(datagram);
}

/* Every decode case of manifest.json: valid ones give the case's `sender`, `number` and
 * `digests` (json_equal), invalid ones SIXCAST_STATUS_MALFORMED and `(reason)` in the message. */
static void test_manifest_decode(json_t *manifest) {
    size_t index, valid = 0, invalid = 0;
    json_t *entry;
    json_array_foreach(json_object_get(manifest, "decode"), index, entry) {
        const char *name = text_field(entry, "name");
        const char *reason = text_field(entry, "reason");
        json_t *decoded;
        SixcastError *error;
        SixcastStatus status =
            decode_hex(sixcast_decode_manifest, text_field(entry, "manifest"), &decoded, &error);
        if (!reason) {
            valid++;
            json_t *expected = json_pack("{s:O, s:O, s:O}", "sender",
                                         json_object_get(entry, "sender"), "number",
                                         json_object_get(entry, "number"), "digests",
                                         json_object_get(entry, "digests"));
            CHECK(expected != NULL, "%s: no sender, number or digests", name);
            CHECK(status == SIXCAST_STATUS_OK, "%s: %s (%s)", name, sixcast_status_name(status),
                  sixcast_error_message(error));
            char *got = decoded ? json_dumps(decoded, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
            char *want = expected ? json_dumps(expected, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
            CHECK(decoded && expected && json_equal(decoded, expected), "%s: %s, expected %s", name,
                  got ? got : "(nothing)", want ? want : "(nothing)");
            free(got);
            free(want);
            json_decref(expected);
        } else {
            invalid++;
            char in_parentheses[64];
            snprintf(in_parentheses, sizeof in_parentheses, "(%s)", reason);
            CHECK(status == SIXCAST_STATUS_MALFORMED, "%s: %s, expected Malformed", name,
                  sixcast_status_name(status));
            CHECK(strstr(sixcast_error_message(error), in_parentheses) != NULL,
                  "%s: message %s, expected the reason %s", name, sixcast_error_message(error),
                  in_parentheses);
        }
        json_decref(decoded);
        sixcast_error_free(error);
    }
    printf("manifest decode cases: %zu valid, %zu invalid\n", valid, invalid);
    CHECK(valid > 0, "some cases are valid");
    CHECK(invalid > 0, "some cases are invalid");
}

/* A datagram of another type is no manifest; the pointers are checked. */
static void test_manifest_misuse(json_t *manifest) {
    json_t *first = NULL;
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(manifest, "decode"), index, entry) {
        if (!first && !json_object_get(entry, "reason")) {
            first = entry;
        }
    }
    CHECK(first != NULL, "no valid manifest case");
    if (!first) {
        return;
    }
    size_t len;
    unsigned char *datagram = hex_bytes(text_field(first, "manifest"), &len);
    char *json = NULL;
    /* The same bytes with the type of a batch of messages (1). */
    datagram[3] = 1;
    SixcastError *error = NULL;
    CHECK(sixcast_decode_manifest(datagram, len, &json, &error) == SIXCAST_STATUS_MALFORMED,
          "a batch decodes");
    CHECK(strstr(sixcast_error_message(error), "(unknown_type)") != NULL, "a batch: %s",
          sixcast_error_message(error));
    sixcast_error_free(error);
    datagram[3] = 7;
    CHECK_STATUS(sixcast_decode_manifest(datagram, len, NULL, &err),
                 SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_decode_manifest(NULL, len, &json, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_decode_manifest(NULL, 0, &json, &err), SIXCAST_STATUS_MALFORMED);
    CHECK(json == NULL, "nothing stored on failure");
    CHECK_OK(sixcast_decode_manifest(datagram, len, &json, &err));
    CHECK(json != NULL, "stored on success");
    sixcast_string_free(json);
    free(datagram);
}

static void test_config(void) {
    SixcastConfig *config = sixcast_config_new();
    char *value = (char *)1;
    CHECK_OK(sixcast_config_get(config, "port", &value, &err));
    CHECK(value == NULL, "no port by default");
    CHECK_OK(sixcast_config_get(config, "profile", &value, &err));
    CHECK(value && strcmp(value, "sixcast") == 0, "profile %s", value);
    sixcast_string_free(value);
    CHECK_OK(sixcast_config_set(config, "stratum0", "[2001:db8::1]:6447", &err));
    CHECK_OK(sixcast_config_set(config, "interfaces", "eth0,eth1", &err));
    CHECK_OK(sixcast_config_get(config, "interfaces", &value, &err));
    CHECK(strcmp(value, "eth0,eth1") == 0, "interfaces %s", value);
    sixcast_string_free(value);
    CHECK_OK(sixcast_config_set(config, "stratum0", NULL, &err));
    CHECK_OK(sixcast_config_get(config, "stratum0", &value, &err));
    CHECK(value == NULL, "stratum0 reset");
    CHECK_STATUS(sixcast_config_set(config, "colour", "blue", &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_STATUS(sixcast_config_set(config, "port", "seventy", &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_STATUS(sixcast_config_set(config, "\xff", "1", &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_config_set(NULL, "port", "1", &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_config_get(config, "port", NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_OK(sixcast_config_set(config, "profile", "embedded-rp", &err));
    CHECK_STATUS(sixcast_config_validate(config, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_OK(sixcast_config_set(config, "rp", "2001:db8:5c::5/64", &err));
    CHECK_OK(sixcast_config_validate(config, &err));
    sixcast_config_free(config);
}

/* `reliable` is a boolean field; the core refuses it with a profile that has no header. */
static void test_config_reliable(void) {
    SixcastConfig *config = sixcast_config_new();
    char *value = NULL;
    CHECK_OK(sixcast_config_get(config, "reliable", &value, &err));
    CHECK(value && strcmp(value, "false") == 0, "reliable by default: %s", value);
    sixcast_string_free(value);
    CHECK_OK(sixcast_config_set(config, "reliable", "true", &err));
    CHECK_OK(sixcast_config_get(config, "reliable", &value, &err));
    CHECK(value && strcmp(value, "true") == 0, "reliable %s", value);
    sixcast_string_free(value);
    CHECK_STATUS(sixcast_config_set(config, "reliable", "yes", &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_OK(sixcast_config_validate(config, &err));
    CHECK_OK(sixcast_config_set(config, "profile", "librecast", &err));
    SixcastError *error = NULL;
    CHECK(sixcast_config_validate(config, &error) == SIXCAST_STATUS_INVALID_CONFIG,
          "reliable librecast validates");
    CHECK(error && strstr(sixcast_error_message(error), "reliable"), "the error names reliable: %s",
          sixcast_error_message(error));
    sixcast_error_free(error);
    SixcastContext *context = NULL;
    CHECK_STATUS(sixcast_context_open(config, &context, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK(context == NULL, "no context opened");
    CHECK_OK(sixcast_config_set(config, "reliable", "0", &err));
    CHECK_OK(sixcast_config_validate(config, &err));
    sixcast_config_free(config);
}

static void test_keys(void) {
    unsigned char seed[32];
    memset(seed, 7, sizeof seed);
    SixcastSigningKey *signing = NULL;
    SixcastPublicKey *public_key = NULL, *parsed = NULL;
    CHECK_OK(sixcast_signing_key_from_seed(seed, sizeof seed, &signing, &err));
    CHECK_STATUS(sixcast_signing_key_from_seed(seed, 31, &signing, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_OK(sixcast_signing_key_public_key(signing, &public_key, &err));
    char *fingerprint = sixcast_public_key_fingerprint(public_key);
    CHECK(fingerprint && strlen(fingerprint) == 16, "fingerprint %s", fingerprint);
    unsigned char bytes[32];
    CHECK_OK(sixcast_public_key_to_bytes(public_key, bytes));
    CHECK_OK(sixcast_public_key_from_bytes(bytes, sizeof bytes, &parsed, &err));
    char *text = NULL, *again = NULL;
    CHECK_OK(sixcast_public_key_to_file_text(parsed, &text, &err));
    CHECK_OK(sixcast_public_key_to_file_text(public_key, &again, &err));
    CHECK(strcmp(text, again) == 0 && strncmp(text, "sixcast-public-key-v1 ", 22) == 0, "%s", text);
    sixcast_string_free(again);
    memset(bytes, 0, sizeof bytes);
    bytes[0] = 1; /* a weak key */
    SixcastPublicKey *weak = NULL;
    CHECK_STATUS(sixcast_public_key_from_bytes(bytes, sizeof bytes, &weak, &err),
                 SIXCAST_STATUS_INVALID_CONFIG);
    CHECK(weak == NULL, "nothing stored on failure");

    char *signing_text = NULL;
    SixcastSigningKey *reread = NULL;
    CHECK_OK(sixcast_signing_key_to_file_text(signing, &signing_text, &err));
    CHECK_OK(sixcast_signing_key_from_file_text(signing_text, &reread, &err));
    CHECK_STATUS(sixcast_signing_key_from_file_text("sixcast-signing-key-v1 zz", &reread, &err),
                 SIXCAST_STATUS_INVALID_CONFIG);

    SixcastChannelKey *channel_key = NULL, *copy = NULL;
    CHECK_OK(sixcast_channel_key_from_bytes(5, seed, sizeof seed, &channel_key, &err));
    CHECK(sixcast_channel_key_id(channel_key) == 5, "id %u", sixcast_channel_key_id(channel_key));
    char *key_text = NULL;
    CHECK_OK(sixcast_channel_key_to_file_text(channel_key, &key_text, &err));
    CHECK_OK(sixcast_channel_key_from_file_text(key_text, &copy, &err));
    CHECK(sixcast_channel_key_id(copy) == 5, "the file keeps the id");

    SixcastToken *token = NULL, *token_copy = NULL;
    char *token_text = NULL;
    CHECK_OK(sixcast_token_issue(signing, public_key, "ff1e:c0:1acf:916c:691a:a851:5b62:1339",
                                 4102444800u, &token, &err));
    CHECK_STATUS(sixcast_token_issue(signing, public_key, "not-a-group", 1, &token_copy, &err),
                 SIXCAST_STATUS_INVALID_ADDRESS);
    CHECK_OK(sixcast_token_to_file_text(token, &token_text, &err));
    CHECK_OK(sixcast_token_from_file_text(token_text, &token_copy, &err));

    sixcast_string_free(fingerprint);
    sixcast_string_free(text);
    sixcast_string_free(signing_text);
    sixcast_string_free(key_text);
    sixcast_string_free(token_text);
    sixcast_token_free(token);
    sixcast_token_free(token_copy);
    sixcast_channel_key_free(channel_key);
    sixcast_channel_key_free(copy);
    sixcast_signing_key_free(signing);
    sixcast_signing_key_free(reread);
    sixcast_public_key_free(public_key);
    sixcast_public_key_free(parsed);
}

/* A file receiver needs a folder that exists; what needs a channel is refused before anything
 * is read when a handle or an output is missing (test_world sends files on a real channel). */
static void test_files(void) {
    char folder[] = "/tmp/sixcast-c-files-XXXXXX";
    CHECK(mkdtemp(folder) != NULL, "a temporary folder");
    char missing[sizeof folder + 16], file[sizeof folder + 16];
    snprintf(missing, sizeof missing, "%s/missing", folder);
    snprintf(file, sizeof file, "%s/a-file", folder);
    FILE *written = fopen(file, "w");
    CHECK(written && fputs("x", written) >= 0 && fclose(written) == 0, "a file in the folder");

    SixcastFileReceiver *receiver = NULL;
    CHECK_STATUS(sixcast_file_receiver_new(missing, 0, 0, &receiver, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_STATUS(sixcast_file_receiver_new(file, 10, 1, &receiver, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK(receiver == NULL, "nothing stored on failure");
    CHECK_STATUS(sixcast_file_receiver_new(NULL, 0, 0, &receiver, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_file_receiver_new("\xff", 0, 0, &receiver, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_file_receiver_new(folder, 0, 0, NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_OK(sixcast_file_receiver_new(folder, 0, 0, &receiver, &err));

    char *json = NULL;
    CHECK_OK(sixcast_file_receiver_stats_json(receiver, &json, &err));
    json_t *stats = json ? json_loads(json, 0, NULL) : NULL;
    const char *fields[] = {"frames", "other_messages", "malformed", "refused",
                            "unfollowed", "chunks", "duplicate_chunks"};
    CHECK(json_object_size(stats) == sizeof fields / sizeof fields[0], "stats %s", json);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *value = json_object_get(stats, fields[i]);
        CHECK(json_is_integer(value) && json_integer_value(value) == 0, "%s in %s", fields[i], json);
    }
    json_decref(stats);
    sixcast_string_free(json);
    json = NULL;
    CHECK_STATUS(sixcast_file_receiver_stats_json(receiver, NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_file_receiver_stats_json(NULL, &json, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_file_receiver_recv(receiver, NULL, 0, &json, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_file_receiver_recv(NULL, NULL, 0, &json, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_send_file(NULL, file, 1, NULL, &json, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK(json == NULL, "nothing stored on failure");
    sixcast_file_receiver_free(receiver);
    sixcast_file_receiver_free(NULL);
    CHECK(unlink(file) == 0 && rmdir(folder) == 0, "the receiver left nothing in %s", folder);
}

static void test_misuse(void) {
    CHECK_STATUS(sixcast_channel_join(NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_context_open(NULL, NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_group_address(NULL, 3, NULL, NULL, NULL, NULL, &err),
                 SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK(sixcast_error_status(NULL) == SIXCAST_STATUS_INVALID_ARGUMENT, "NULL error");
    CHECK(strcmp(sixcast_error_message(NULL), "") == 0, "NULL error message");
    /* Freeing NULL is harmless, as free(3). */
    sixcast_context_free(NULL);
    sixcast_channel_free(NULL);
    sixcast_message_free(NULL);
    sixcast_error_free(NULL);
    sixcast_string_free(NULL);
    /* A failing call without a place for the error still returns its status. */
    CHECK(sixcast_channel_flush(NULL, NULL) == SIXCAST_STATUS_INVALID_ARGUMENT, "no error_out");
    CHECK_STATUS(sixcast_channel_try_send(NULL, NULL, 0, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(sixcast_channel_send_timeout(NULL, NULL, 0, 0, &err),
                 SIXCAST_STATUS_INVALID_ARGUMENT);
    for (size_t i = 0; i < SIXCAST_DROP_REASONS; i++) {
        CHECK(sixcast_drop_reason_name(i) != NULL, "drop reason %zu", i);
    }
    CHECK(sixcast_drop_reason_name(SIXCAST_DROP_REASONS) == NULL, "past the last reason");
    CHECK(strcmp(sixcast_drop_reason_name(0), "not_sealed") == 0, "first reason");
    CHECK(strlen(sixcast_version()) > 0, "version");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <vectors directory>\n", argv[0]);
        return 2;
    }
    vectors_dir = argv[1];
    json_t *errors = load_vectors("errors.json");
    json_t *addresses = load_vectors("addresses.json");
    json_t *repair = load_vectors("repair.json");
    json_t *manifest = load_vectors("manifest.json");
    test_error_kinds(errors);
    test_error_cases(errors);
    test_addresses(addresses);
    test_repair_decode(repair);
    test_repair_parity(repair);
    test_repair_misuse(repair);
    test_manifest_decode(manifest);
    test_manifest_misuse(manifest);
    test_config();
    test_config_reliable();
    test_keys();
    test_files();
    test_misuse();
    json_decref(errors);
    json_decref(addresses);
    json_decref(repair);
    json_decref(manifest);
    return check_summary("test_api");
}
