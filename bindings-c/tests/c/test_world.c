/* The C API on a real network: run inside a host of a network-namespace world (run-tests does
 * that), never on this machine's own interfaces. Two contexts of one host talk through
 * multicast loopback: messages with their metadata, timeouts, the readiness descriptor, signed
 * channels, counters, loss per sender, size limits, a send rate refusing try_send and
 * send_timeout, a file sent to a receiver, and close waking a blocked receive. */
#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define WAIT_MS 5000

static SixcastContext *open_context(const char *max_message_size) {
    SixcastConfig *config = sixcast_config_new();
    CHECK_OK(sixcast_config_set(config, "hop_limit", "1", &err));
    if (max_message_size) {
        CHECK_OK(sixcast_config_set(config, "max_message_size", max_message_size, &err));
    }
    SixcastContext *context = NULL;
    CHECK_OK(sixcast_context_open(config, &context, &err));
    sixcast_config_free(config);
    if (!context) {
        exit(check_summary("test_world (no context)"));
    }
    return context;
}

static SixcastChannel *channel_of(SixcastContext *context, const char *name) {
    SixcastChannel *channel = NULL;
    CHECK_OK(sixcast_context_channel(context, name, &channel, &err));
    if (!channel) {
        exit(check_summary("test_world (no channel)"));
    }
    return channel;
}

static void send_text(SixcastChannel *channel, const char *text) {
    CHECK_OK(sixcast_channel_send(channel, (const uint8_t *)text, strlen(text), &err));
    CHECK_OK(sixcast_channel_flush(channel, &err));
}

/* Receives one message and checks it holds `text`; returns it for more checks (or NULL). */
static SixcastMessage *expect_text(SixcastChannel *channel, const char *text) {
    SixcastMessage *message = NULL;
    CHECK_OK(sixcast_channel_recv(channel, WAIT_MS, &message, &err));
    if (message) {
        /* An empty payload is NULL, which memcmp must not be given. */
        CHECK(message->payload_len == strlen(text) &&
                  (message->payload_len == 0 ||
                   memcmp(message->payload, text, message->payload_len) == 0),
              "expected \"%s\", got %zu bytes", text, message->payload_len);
    }
    return message;
}

static void test_messages(SixcastContext *sender, SixcastContext *receiver) {
    SixcastChannel *out = channel_of(sender, "c-world");
    SixcastChannel *in = channel_of(receiver, "c-world");
    CHECK_OK(sixcast_channel_join(in, &err));

    enum { LARGE = 100000 };
    uint8_t *large = malloc(LARGE);
    for (size_t i = 0; i < LARGE; i++) {
        large[i] = (uint8_t)(i % 251);
    }
    CHECK_OK(sixcast_channel_send(out, (const uint8_t *)"hello", 5, &err));
    CHECK_OK(sixcast_channel_send(out, NULL, 0, &err));
    CHECK_OK(sixcast_channel_send(out, large, LARGE, &err));
    CHECK_OK(sixcast_channel_flush(out, &err));

    char *node_id = sixcast_context_node_id(sender);
    char *group = sixcast_channel_group(in);
    SixcastMessage *first = expect_text(in, "hello");
    if (first) {
        CHECK(strcmp(first->sender, node_id) == 0, "sender %s, not %s", first->sender, node_id);
        CHECK(strcmp(first->group, group) == 0, "group %s", first->group);
        CHECK(strcmp(first->path, "native") == 0 && !first->relayed, "path %s", first->path);
        CHECK(strcmp(first->interface_name, "eth0") == 0, "interface %s", first->interface_name);
        CHECK(first->source_port == sixcast_context_port(sender), "port %u", first->source_port);
        CHECK(strlen(first->source) > 0, "a source address");
    }
    SixcastMessage *empty = expect_text(in, "");
    SixcastMessage *big = NULL;
    CHECK_OK(sixcast_channel_recv(in, WAIT_MS, &big, &err));
    CHECK(big && big->payload_len == LARGE && memcmp(big->payload, large, LARGE) == 0,
          "the fragmented message arrives whole");
    CHECK(first && empty && big && first->seq < empty->seq && empty->seq < big->seq,
          "sequence numbers rise");
    sixcast_message_free(first);
    sixcast_message_free(empty);
    sixcast_message_free(big);

    SixcastMessage *none = (SixcastMessage *)1;
    CHECK_STATUS(sixcast_channel_recv(in, 50, &none, &err), SIXCAST_STATUS_TIMEOUT);
    CHECK_OK(sixcast_channel_try_recv(in, &none, &err));
    CHECK(none == NULL, "nothing waits");

    SixcastStats sent, received;
    CHECK_OK(sixcast_channel_stats(out, &sent));
    CHECK_OK(sixcast_channel_stats(in, &received));
    CHECK(sent.messages_sent == 3 && sent.bytes_sent == LARGE + 5, "sent %llu",
          (unsigned long long)sent.messages_sent);
    CHECK(received.messages_received == 3 && received.lost == 0, "received %llu",
          (unsigned long long)received.messages_received);
    free(large);
    sixcast_string_free(node_id);
    sixcast_string_free(group);
    sixcast_channel_free(out);
    sixcast_channel_free(in);
}

static int readable(int fd, int timeout_ms) {
    struct pollfd waiting = {.fd = fd, .events = POLLIN};
    return poll(&waiting, 1, timeout_ms) == 1 && (waiting.revents & POLLIN);
}

/* Takes every waiting message; returns how many there were. */
static int drain(SixcastChannel *channel) {
    int count = 0;
    for (;;) {
        SixcastMessage *message = NULL;
        CHECK_OK(sixcast_channel_try_recv(channel, &message, &err));
        if (!message) {
            return count;
        }
        sixcast_message_free(message);
        count++;
    }
}

static void test_readiness(SixcastContext *sender, SixcastContext *receiver) {
    SixcastChannel *out = channel_of(sender, "c-ready");
    SixcastChannel *in = channel_of(receiver, "c-ready");
    CHECK_OK(sixcast_channel_join(in, &err));
    int fd = -1, same = -2;
    CHECK_OK(sixcast_channel_readiness_fd(in, &fd, &err));
    CHECK_OK(sixcast_channel_readiness_fd(in, &same, &err));
    CHECK(fd >= 0 && fd == same, "one descriptor per channel: %d %d", fd, same);
    CHECK(drain(in) == 0 && !readable(fd, 100), "nothing waits yet");
    for (int round = 0; round < 2; round++) {
        send_text(out, "one");
        send_text(out, "two");
        CHECK(readable(fd, WAIT_MS), "round %d: a message makes the descriptor readable", round);
        /* Both may have arrived already, or the second may still be on its way. */
        int taken = drain(in);
        if (taken < 2 && readable(fd, WAIT_MS)) {
            taken += drain(in);
        }
        CHECK(taken == 2, "round %d: took %d messages", round, taken);
        CHECK(!readable(fd, 200), "round %d: drained, the descriptor is quiet", round);
    }
    sixcast_channel_free(out);
    sixcast_channel_free(in);
}

static void test_signed(SixcastContext *sender, SixcastContext *receiver) {
    unsigned char seed[32];
    memset(seed, 3, sizeof seed);
    SixcastSigningKey *key = NULL, *stranger = NULL;
    SixcastPublicKey *public_key = NULL, *stranger_public = NULL;
    CHECK_OK(sixcast_signing_key_from_seed(seed, sizeof seed, &key, &err));
    CHECK_OK(sixcast_signing_key_generate(&stranger, &err));
    CHECK_OK(sixcast_signing_key_public_key(key, &public_key, &err));
    CHECK_OK(sixcast_signing_key_public_key(stranger, &stranger_public, &err));

    SixcastChannel *out = channel_of(sender, "c-signed");
    SixcastChannel *in = channel_of(receiver, "c-signed");
    CHECK_OK(sixcast_channel_join(in, &err));
    CHECK_OK(sixcast_channel_sign_with(out, key, &err));
    CHECK_OK(sixcast_channel_trust(in, stranger_public, &err));
    send_text(out, "from an untrusted key");
    SixcastMessage *message = NULL;
    CHECK_STATUS(sixcast_channel_recv(in, 500, &message, &err), SIXCAST_STATUS_TIMEOUT);
    SixcastStats stats;
    CHECK_OK(sixcast_channel_stats(in, &stats));
    CHECK(strcmp(sixcast_drop_reason_name(4), "untrusted_signer") == 0, "reason 4");
    CHECK(stats.drops[4] >= 1, "untrusted drops %llu", (unsigned long long)stats.drops[4]);

    CHECK_OK(sixcast_channel_trust(in, public_key, &err));
    send_text(out, "from a trusted key");
    sixcast_message_free(expect_text(in, "from a trusted key"));

    sixcast_channel_free(out);
    sixcast_channel_free(in);
    sixcast_signing_key_free(key);
    sixcast_signing_key_free(stranger);
    sixcast_public_key_free(public_key);
    sixcast_public_key_free(stranger_public);
}

/* Without a Stratum 0 there is no report; with one that never answers, the report names it and
 * says why the core is out of reach. */
static void test_reachability(SixcastContext *plain) {
    char *json = (char *)1;
    CHECK_OK(sixcast_context_reachability(plain, &json, &err));
    CHECK(json == NULL, "no Stratum 0, no report");
    json = (char *)1;
    CHECK_OK(sixcast_context_try_event(plain, &json, &err));
    CHECK(json == NULL, "no event yet");
    CHECK_STATUS(sixcast_context_next_event(plain, 50, &json, &err), SIXCAST_STATUS_TIMEOUT);

    SixcastConfig *config = sixcast_config_new();
    CHECK_OK(sixcast_config_set(config, "stratum0", "[fd5c:1::99]:6447", &err));
    CHECK_OK(sixcast_config_set(config, "probe_timeout_ms", "200", &err));
    CHECK_OK(sixcast_config_set(config, "probe_interval_ms", "1000", &err));
    SixcastContext *context = NULL;
    CHECK_OK(sixcast_context_open(config, &context, &err));
    sixcast_config_free(config);
    json_t *report = NULL;
    /* The first probe times out after 200 ms; give it up to 5 s on a loaded machine. */
    for (int tries = 0; context && tries < 100; tries++) {
        json = NULL;
        CHECK_OK(sixcast_context_reachability(context, &json, &err));
        json_decref(report);
        report = json ? json_loads(json, 0, NULL) : NULL;
        sixcast_string_free(json);
        if (!report || !json_is_null(json_object_get(report, "last_error")) ||
            !json_is_null(json_object_get(report, "probe"))) {
            break;
        }
        usleep(50 * 1000);
    }
    CHECK(report != NULL, "a report as JSON");
    const char *stratum0 = json_string_value(json_object_get(report, "stratum0"));
    CHECK(stratum0 && strcmp(stratum0, "[fd5c:1::99]:6447") == 0, "stratum0 %s", stratum0);
    json_t *probe = json_object_get(report, "probe");
    json_t *last_error = json_object_get(report, "last_error");
    CHECK((json_is_object(probe) && json_is_false(json_object_get(probe, "answered"))) ||
              json_is_string(last_error),
          "an unanswered probe or an error is reported");
    CHECK(json_is_array(json_object_get(report, "offers")) &&
              json_is_null(json_object_get(report, "relay")),
          "no relay");
    json_decref(report);
    /* The failed attempt is announced as an unreachable core. */
    char *event = NULL;
    for (int tries = 0; context && tries < 10; tries++) {
        sixcast_string_free(event);
        event = NULL;
        if (sixcast_context_next_event(context, 1000, &event, NULL) == SIXCAST_STATUS_OK &&
            strstr(event, "\"path_changed\"")) {
            break;
        }
    }
    json_t *parsed = event ? json_loads(event, 0, NULL) : NULL;
    CHECK(parsed && strcmp(json_string_value(json_object_get(parsed, "path")), "unreachable") == 0,
          "the path event: %s", event ? event : "(none)");
    json_decref(parsed);
    sixcast_string_free(event);
    sixcast_context_free(context);
}

/* Writes into `out` the MESSAGES datagram of a made-up `sender` carrying one message, "numbered",
 * of sequence number `seq`, as docs/wire-format.md lays it out: the 24-byte header (magic,
 * version 1, type 1, no flags, one record, sender, seq), then the record's length and payload.
 * Returns its length. */
static size_t numbered_datagram(uint64_t sender, uint64_t seq, uint8_t out[33]) {
    const uint8_t head[8] = {0x36, 0x63, 1, 1, 0, 0, 0, 1};
    memcpy(out, head, sizeof head);
    for (int i = 0; i < 8; i++) {
        out[8 + i] = (uint8_t)(sender >> (56 - 8 * i));
        out[16 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    out[24] = 8;
    memcpy(out + 25, "numbered", 8);
    return 33;
}

/* Messages 0, 1 and 4 of one made-up sender and 0, 1 and 2 of another, sent from a plain UDP
 * socket of this host through multicast loopback: the channel reports both senders, by node id,
 * and the two messages the first skipped. */
static void test_sender_losses(SixcastContext *receiver) {
    SixcastChannel *in = channel_of(receiver, "c-sender-losses");
    CHECK_OK(sixcast_channel_join(in, &err));
    char *json = NULL;
    CHECK_OK(sixcast_channel_sender_losses_json(in, &json, &err));
    CHECK(json && strcmp(json, "[]") == 0, "no sender yet: %s", json ? json : "(null)");
    sixcast_string_free(json);

    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    int index = (int)if_nametoindex("eth0"), loop = 1;
    CHECK(fd >= 0 && index > 0 &&
              setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) == 0 &&
              setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof loop) == 0,
          "a plain UDP socket sending through multicast loopback on eth0");
    char *group = sixcast_channel_group(in);
    struct sockaddr_in6 to = {.sin6_family = AF_INET6,
                              .sin6_port = htons(sixcast_context_port(receiver))};
    CHECK(group && inet_pton(AF_INET6, group, &to.sin6_addr) == 1, "group %s", group);
    const struct {
        uint64_t sender, seq;
    } sent[] = {{0x42, 0}, {0x42, 1}, {0x42, 4}, {0x07, 0}, {0x07, 1}, {0x07, 2}};
    enum { SENT = sizeof sent / sizeof sent[0] };
    for (size_t i = 0; i < SENT; i++) {
        uint8_t datagram[33];
        size_t len = numbered_datagram(sent[i].sender, sent[i].seq, datagram);
        CHECK(sendto(fd, datagram, len, 0, (const struct sockaddr *)&to, sizeof to) == (ssize_t)len,
              "sent datagram %zu", i);
    }
    if (fd >= 0) {
        close(fd);
    }
    int heard[SENT] = {0};
    for (size_t i = 0; i < SENT; i++) {
        SixcastMessage *message = NULL;
        CHECK_OK(sixcast_channel_recv(in, WAIT_MS, &message, &err));
        for (size_t j = 0; message && j < SENT; j++) {
            char sender[17];
            snprintf(sender, sizeof sender, "%016llx", (unsigned long long)sent[j].sender);
            heard[j] += strcmp(message->sender, sender) == 0 && message->seq == sent[j].seq;
        }
        sixcast_message_free(message);
    }
    for (size_t j = 0; j < SENT; j++) {
        CHECK(heard[j] == 1, "message %llu of %016llx heard %d times",
              (unsigned long long)sent[j].seq, (unsigned long long)sent[j].sender, heard[j]);
    }
    SixcastStats stats;
    CHECK_OK(sixcast_channel_stats(in, &stats));
    CHECK(stats.lost == 2, "lost %llu", (unsigned long long)stats.lost);

    json = NULL;
    CHECK_OK(sixcast_channel_sender_losses_json(in, &json, &err));
    json_t *losses = json ? json_loads(json, 0, NULL) : NULL;
    /* By node id: the sender without a gap first. */
    json_t *expected = json_loads("[{\"sender\": \"0000000000000007\", \"highest_seq\": 2, \"lost\": 0},"
                                  " {\"sender\": \"0000000000000042\", \"highest_seq\": 4, \"lost\": 2}]",
                                  0, NULL);
    CHECK(losses && expected && json_equal(losses, expected), "sender losses %s",
          json ? json : "(null)");
    json_decref(losses);
    json_decref(expected);
    sixcast_string_free(json);
    CHECK_STATUS(sixcast_channel_sender_losses_json(in, NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    json = NULL;
    CHECK_STATUS(sixcast_channel_sender_losses_json(NULL, &json, &err),
                 SIXCAST_STATUS_INVALID_ARGUMENT);
    sixcast_string_free(group);
    sixcast_channel_free(in);
}

static void *receive_until_closed(void *channel) {
    SixcastMessage *message = NULL;
    SixcastError *error = NULL;
    SixcastStatus status = sixcast_channel_recv(channel, -1, &message, &error);
    sixcast_error_free(error);
    sixcast_message_free(message);
    return (void *)(intptr_t)status;
}

static void test_close(void) {
    SixcastContext *context = open_context("4096");
    SixcastChannel *channel = channel_of(context, "c-close");
    uint8_t too_large[5000] = {0};
    CHECK_STATUS(sixcast_channel_send(channel, too_large, sizeof too_large, &err),
                 SIXCAST_STATUS_MESSAGE_TOO_LARGE);
    CHECK_OK(sixcast_channel_join(channel, &err));
    int fd = -1;
    CHECK_OK(sixcast_channel_readiness_fd(channel, &fd, &err));
    CHECK(drain(channel) == 0 && !readable(fd, 0), "quiet before the close");
    pthread_t waiter;
    pthread_create(&waiter, NULL, receive_until_closed, channel);
    usleep(100 * 1000);
    CHECK(!sixcast_context_is_closed(context), "open");
    sixcast_context_close(context);
    void *status;
    pthread_join(waiter, &status);
    CHECK((SixcastStatus)(intptr_t)status == SIXCAST_STATUS_CLOSED, "the blocked receive got %s",
          sixcast_status_name((int)(intptr_t)status));
    CHECK(readable(fd, WAIT_MS), "closing wakes the readiness descriptor");
    CHECK(sixcast_context_is_closed(context), "closed");
    CHECK_STATUS(sixcast_channel_flush(channel, &err), SIXCAST_STATUS_CLOSED);
    CHECK_STATUS(sixcast_channel_try_send(channel, (const uint8_t *)"late", 4, &err),
                 SIXCAST_STATUS_CLOSED);
    CHECK_STATUS(sixcast_channel_send_timeout(channel, (const uint8_t *)"late", 4, 100, &err),
                 SIXCAST_STATUS_CLOSED);
    SixcastChannel *late = NULL;
    CHECK_STATUS(sixcast_context_channel(context, "late", &late, &err), SIXCAST_STATUS_CLOSED);
    sixcast_context_close(context);
    sixcast_channel_free(channel);
    sixcast_context_free(context);
}

static double milliseconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* A context that sends 10 messages a second: try_send sends the first at once and refuses the
 * second, send_timeout refuses with 50 ms and waits for the turn with 500 ms. The receiver
 * gets only what was sent. */
static void test_paced(SixcastContext *receiver) {
    SixcastConfig *config = sixcast_config_new();
    CHECK_OK(sixcast_config_set(config, "hop_limit", "1", &err));
    /* One message every 100 ms; the pacer's 10 ms burst lets the first go at once. */
    CHECK_OK(sixcast_config_set(config, "send_rate_messages", "10", &err));
    SixcastContext *paced = NULL;
    CHECK_OK(sixcast_context_open(config, &paced, &err));
    sixcast_config_free(config);
    if (!paced) {
        return;
    }
    SixcastChannel *out = channel_of(paced, "c-paced");
    SixcastChannel *in = channel_of(receiver, "c-paced");
    CHECK_OK(sixcast_channel_join(in, &err));

    CHECK_OK(sixcast_channel_try_send(out, (const uint8_t *)"first", 5, &err));
    CHECK_STATUS(sixcast_channel_try_send(out, (const uint8_t *)"refused", 7, &err),
                 SIXCAST_STATUS_TIMEOUT);
    CHECK_STATUS(sixcast_channel_send_timeout(out, (const uint8_t *)"also refused", 12, 50, &err),
                 SIXCAST_STATUS_TIMEOUT);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK_OK(sixcast_channel_send_timeout(out, (const uint8_t *)"second", 6, 500, &err));
    double waited = milliseconds_since(&start);
    CHECK(waited >= 80 && waited < 400, "send_timeout(500) returned after %.1f ms", waited);
    CHECK_OK(sixcast_channel_flush(out, &err));

    SixcastStats sent;
    CHECK_OK(sixcast_channel_stats(out, &sent));
    CHECK(sent.messages_sent == 2, "sent %llu", (unsigned long long)sent.messages_sent);
    sixcast_message_free(expect_text(in, "first"));
    sixcast_message_free(expect_text(in, "second"));
    /* The refused messages were never queued, so they never left. */
    SixcastMessage *none = NULL;
    CHECK_STATUS(sixcast_channel_recv(in, 300, &none, &err), SIXCAST_STATUS_TIMEOUT);
    CHECK(none == NULL, "nothing else arrives");
    sixcast_message_free(none);
    sixcast_channel_free(out);
    sixcast_channel_free(in);
    sixcast_context_free(paced);
}

/* A reliable sender numbers its packets and announces the end of each burst with parity; an
 * ordinary context receives them all the same. Nothing is lost through loopback, so nothing is
 * asked for or rebuilt. */
static void test_reliable(SixcastContext *receiver) {
    SixcastConfig *config = sixcast_config_new();
    CHECK_OK(sixcast_config_set(config, "hop_limit", "1", &err));
    CHECK_OK(sixcast_config_set(config, "reliable", "true", &err));
    SixcastContext *sender = NULL;
    CHECK_OK(sixcast_context_open(config, &sender, &err));
    sixcast_config_free(config);
    if (!sender) {
        return;
    }
    SixcastChannel *out = channel_of(sender, "c-reliable");
    SixcastChannel *in = channel_of(receiver, "c-reliable");
    CHECK_OK(sixcast_channel_join(in, &err));
    send_text(out, "numbered");
    sixcast_message_free(expect_text(in, "numbered"));

    SixcastStats sent;
    memset(&sent, 0, sizeof sent);
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        CHECK_OK(sixcast_channel_stats(out, &sent));
        if (sent.repairs_sent > 0) {
            break;
        }
        usleep(20 * 1000);
    }
    CHECK(sent.repairs_sent >= 1 && sent.repair_bytes_sent > sent.repairs_sent,
          "repairs sent %llu, %llu bytes", (unsigned long long)sent.repairs_sent,
          (unsigned long long)sent.repair_bytes_sent);
    CHECK(sent.messages_sent == 1 && sent.nacks_received == 0 && sent.nacks_sent == 0 &&
              sent.repairs_received == 0 && sent.packets_recovered == 0 && sent.packets_lost == 0,
          "sender: %llu sent, %llu NACKs received", (unsigned long long)sent.messages_sent,
          (unsigned long long)sent.nacks_received);
    SixcastStats received;
    CHECK_OK(sixcast_channel_stats(in, &received));
    CHECK(received.messages_received == 1 && received.lost == 0 && received.nacks_sent == 0 &&
              received.packets_recovered == 0 && received.packets_lost == 0 &&
              received.repairs_sent == 0 && received.repair_bytes_sent == 0,
          "receiver: %llu received, %llu NACKs sent, %llu packets lost",
          (unsigned long long)received.messages_received, (unsigned long long)received.nacks_sent,
          (unsigned long long)received.packets_lost);
    SixcastStats totals;
    CHECK_OK(sixcast_context_stats(sender, &totals));
    CHECK(totals.repairs_sent >= sent.repairs_sent, "context repairs %llu",
          (unsigned long long)totals.repairs_sent);
    sixcast_channel_free(out);
    sixcast_channel_free(in);
    sixcast_context_free(sender);
}

struct file_sending {
    SixcastChannel *channel;
    const char *path;
    SixcastStatus status;
    char *json;
};

/* Sends a message that is not a file, then the file, as `received.bin`. */
static void *send_file_thread(void *argument) {
    struct file_sending *sending = argument;
    SixcastError *error = NULL;
    sending->status = sixcast_channel_send(sending->channel, (const uint8_t *)"not a file", 10, &error);
    if (sending->status == SIXCAST_STATUS_OK) {
        sending->status = sixcast_send_file(sending->channel, sending->path, 1, "received.bin",
                                            &sending->json, &error);
    }
    if (error) {
        fprintf(stderr, "send_file_thread: %s\n", sixcast_error_message(error));
    }
    sixcast_error_free(error);
    return NULL;
}

/* The SHA-256 of the file at `path` in hex, as sha256sum computes it (out holds 65 bytes). */
static int sha256sum(const char *path, char *out) {
    char command[4200];
    snprintf(command, sizeof command, "sha256sum '%s'", path);
    FILE *pipe = popen(command, "r");
    int ok = pipe && fscanf(pipe, "%64s", out) == 1 && strlen(out) == 64;
    if (pipe) {
        ok = pclose(pipe) == 0 && ok;
    }
    return ok;
}

/* The names in `folder`, comma-separated, into `out`. */
static void list_folder(const char *folder, char *out, size_t size) {
    out[0] = '\0';
    DIR *dir = opendir(folder);
    for (struct dirent *entry; dir && (entry = readdir(dir));) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            size_t used = strlen(out);
            snprintf(out + used, size - used, "%s%s", used ? "," : "", entry->d_name);
        }
    }
    if (dir) {
        closedir(dir);
    }
}

/* A reliable sender's file of 200 KiB of random bytes arrives whole in a receiver's folder;
 * names that are not plain ones, 0 passes and a missing file are refused before any sending. */
static void test_files(SixcastContext *receiver_context) {
    SixcastConfig *config = sixcast_config_new();
    CHECK_OK(sixcast_config_set(config, "hop_limit", "1", &err));
    CHECK_OK(sixcast_config_set(config, "reliable", "true", &err));
    SixcastContext *sender = NULL;
    CHECK_OK(sixcast_context_open(config, &sender, &err));
    sixcast_config_free(config);
    char folder[] = "/tmp/sixcast-c-world-XXXXXX";
    if (!sender || !mkdtemp(folder)) {
        CHECK(0, "a sender and a folder");
        sixcast_context_free(sender);
        return;
    }
    char source[64], inbox[64], expected_path[96];
    snprintf(source, sizeof source, "%s/payload.bin", folder);
    snprintf(inbox, sizeof inbox, "%s/inbox", folder);
    snprintf(expected_path, sizeof expected_path, "%s/received.bin", inbox);
    CHECK(mkdir(inbox, 0700) == 0, "an inbox");
    enum { SIZE = 200 * 1024 };
    uint8_t *data = malloc(SIZE);
    FILE *random = fopen("/dev/urandom", "r");
    CHECK(random && fread(data, 1, SIZE, random) == SIZE, "random bytes");
    if (random) {
        fclose(random);
    }
    FILE *written = fopen(source, "w");
    CHECK(written && fwrite(data, 1, SIZE, written) == SIZE && fclose(written) == 0, "the source");
    char digest[65] = "";
    CHECK(sha256sum(source, digest), "sha256sum of the source");

    SixcastChannel *out = channel_of(sender, "c-files");
    SixcastChannel *in = channel_of(receiver_context, "c-files");
    char *json = NULL;
    CHECK_STATUS(sixcast_send_file(out, source, 1, "../x", &json, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_STATUS(sixcast_send_file(out, source, 1, ".hidden", &json, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_STATUS(sixcast_send_file(out, source, 0, NULL, &json, &err), SIXCAST_STATUS_INVALID_CONFIG);
    CHECK_STATUS(sixcast_send_file(out, inbox, 1, "missing.bin", &json, &err), SIXCAST_STATUS_IO);
    CHECK_STATUS(sixcast_send_file(out, source, 1, NULL, NULL, &err), SIXCAST_STATUS_INVALID_ARGUMENT);
    CHECK(json == NULL, "nothing stored on failure");
    SixcastStats stats;
    CHECK_OK(sixcast_channel_stats(out, &stats));
    CHECK(stats.messages_sent == 0, "a refused file sends nothing: %llu",
          (unsigned long long)stats.messages_sent);

    /* A FileReceiver does not join: the application does. */
    CHECK_OK(sixcast_channel_join(in, &err));
    SixcastFileReceiver *receiver = NULL;
    CHECK_OK(sixcast_file_receiver_new(inbox, 0, 0, &receiver, &err));
    CHECK_STATUS(sixcast_file_receiver_recv(receiver, in, 100, &json, &err), SIXCAST_STATUS_TIMEOUT);
    struct file_sending sending = {.channel = out, .path = source};
    pthread_t thread;
    pthread_create(&thread, NULL, send_file_thread, &sending);
    CHECK_OK(sixcast_file_receiver_recv(receiver, in, 30000, &json, &err));
    pthread_join(thread, NULL);
    CHECK(sending.status == SIXCAST_STATUS_OK, "sending: %s", sixcast_status_name(sending.status));

    json_t *sent = sending.json ? json_loads(sending.json, 0, NULL) : NULL;
    json_t *outcome = json ? json_loads(json, 0, NULL) : NULL;
    CHECK(sent && outcome, "sent %s, received %s", sending.json, json);
    const char *sent_name = json_string_value(json_object_get(sent, "name"));
    const char *sent_sha256 = json_string_value(json_object_get(sent, "sha256"));
    json_int_t chunk = json_integer_value(json_object_get(sent, "chunk"));
    CHECK(sent_name && strcmp(sent_name, "received.bin") == 0, "sent as %s", sent_name);
    CHECK(json_integer_value(json_object_get(sent, "size")) == SIZE, "sent %s", sending.json);
    CHECK(sent_sha256 && strcmp(sent_sha256, digest) == 0, "sent sha256 %s, not %s", sent_sha256, digest);
    CHECK(chunk >= 64 && chunk <= 1232, "chunk %lld", (long long)chunk);

    char *node_id = sixcast_context_node_id(sender);
    const char *name = json_string_value(json_object_get(outcome, "name"));
    const char *path = json_string_value(json_object_get(outcome, "path"));
    const char *sha256 = json_string_value(json_object_get(outcome, "sha256"));
    const char *from = json_string_value(json_object_get(outcome, "sender"));
    CHECK(json_is_true(json_object_get(outcome, "complete")), "not complete: %s", json);
    CHECK(name && strcmp(name, "received.bin") == 0, "name %s", name);
    CHECK(path && strcmp(path, expected_path) == 0, "path %s", path);
    CHECK(json_integer_value(json_object_get(outcome, "size")) == SIZE, "received %s", json);
    CHECK(sha256 && strcmp(sha256, digest) == 0, "sha256 %s, not %s", sha256, digest);
    CHECK(from && node_id && strcmp(from, node_id) == 0, "sender %s, not %s", from, node_id);
    CHECK(json_is_integer(json_object_get(outcome, "resumed")) &&
              json_integer_value(json_object_get(outcome, "resumed")) == 0,
          "resumed in %s", json);

    uint8_t *received = malloc(SIZE + 1);
    FILE *copy = fopen(expected_path, "r");
    size_t copied = copy ? fread(received, 1, SIZE + 1, copy) : 0;
    if (copy) {
        fclose(copy);
    }
    CHECK(copied == SIZE && memcmp(received, data, SIZE) == 0, "the received file holds %zu bytes of "
          "the source's", copied);
    char received_digest[65] = "";
    CHECK(sha256sum(expected_path, received_digest) && strcmp(received_digest, digest) == 0,
          "sha256sum of the received file %s", received_digest);
    /* The partial file and its state are gone: only the named file is left. */
    char names[256];
    list_folder(inbox, names, sizeof names);
    CHECK(strcmp(names, "received.bin") == 0, "the inbox holds %s", names);

    char *stats_text = NULL;
    CHECK_OK(sixcast_file_receiver_stats_json(receiver, &stats_text, &err));
    json_t *file_stats = stats_text ? json_loads(stats_text, 0, NULL) : NULL;
    json_int_t chunks = chunk > 0 ? (SIZE + chunk - 1) / chunk : -1;
    CHECK(json_integer_value(json_object_get(file_stats, "chunks")) == chunks &&
              json_integer_value(json_object_get(file_stats, "duplicate_chunks")) == 0 &&
              json_integer_value(json_object_get(file_stats, "other_messages")) == 1 &&
              json_integer_value(json_object_get(file_stats, "frames")) >= chunks + 1 &&
              json_integer_value(json_object_get(file_stats, "malformed")) == 0 &&
              json_integer_value(json_object_get(file_stats, "refused")) == 0,
          "receiver stats %s (%lld chunks)", stats_text, (long long)chunks);

    json_decref(file_stats);
    json_decref(sent);
    json_decref(outcome);
    sixcast_string_free(stats_text);
    sixcast_string_free(node_id);
    sixcast_string_free(sending.json);
    sixcast_string_free(json);
    sixcast_file_receiver_free(receiver);
    sixcast_channel_free(out);
    sixcast_channel_free(in);
    /* Closing a reliable context waits for the receivers' last repairs. */
    sixcast_context_free(sender);
    free(data);
    free(received);
    CHECK(unlink(expected_path) == 0 && rmdir(inbox) == 0 && unlink(source) == 0 &&
              rmdir(folder) == 0,
          "the transfer left nothing else in %s", folder);
}

int main(void) {
    SixcastContext *sender = open_context(NULL);
    SixcastContext *receiver = open_context(NULL);
    char *interfaces = sixcast_context_interfaces(receiver);
    CHECK(interfaces && strcmp(interfaces, "eth0") == 0, "interfaces %s", interfaces);
    sixcast_string_free(interfaces);
    test_messages(sender, receiver);
    test_readiness(sender, receiver);
    test_signed(sender, receiver);
    test_reachability(receiver);
    test_reliable(receiver);
    test_paced(receiver);
    test_sender_losses(receiver);
    test_files(receiver);
    SixcastStats totals;
    CHECK_OK(sixcast_context_stats(receiver, &totals));
    CHECK(totals.messages_received >= 8, "context totals %llu",
          (unsigned long long)totals.messages_received);
    sixcast_context_free(sender);
    sixcast_context_free(receiver);
    test_close();
    return check_summary("test_world");
}
