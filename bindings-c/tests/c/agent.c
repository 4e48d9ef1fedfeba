/* The C conformance agent of the cross-language matrix; tests/conformance/agents/README.md
 * specifies the command line. Built only with `pkg-config --cflags --libs sixcast` against an
 * installed libsixcast, as a C user would build it.
 *   agent send <channel> <label>
 *   agent recv <channel> <count> <timeout-seconds> */
#include <sixcast.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PATTERN_SIZE (1 << 20)
#define TIMED_OUT 3

static uint8_t *pattern(void) {
    uint8_t *bytes = malloc(PATTERN_SIZE);
    for (size_t i = 0; bytes && i < PATTERN_SIZE; i++) {
        bytes[i] = (uint8_t)(i % 251);
    }
    return bytes;
}

/* Prints the error of a failed call and exits. */
static void fail(const char *what, SixcastError *error) {
    fprintf(stderr, "agent: %s: %s (%s)\n", what, sixcast_error_message(error),
            sixcast_status_name(sixcast_error_status(error)));
    sixcast_error_free(error);
    exit(1);
}

#define TRY(call, what)                               \
    do {                                              \
        SixcastError *error = NULL;                   \
        if ((call) != SIXCAST_STATUS_OK) {            \
            fail(what, error);                        \
        }                                             \
    } while (0)

/* Writes `bytes` as a JSON string: quotes, backslashes and control characters escaped. */
static void print_json_string(const uint8_t *bytes, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == '"' || bytes[i] == '\\') {
            printf("\\%c", bytes[i]);
        } else if (bytes[i] < 0x20) {
            printf("\\u%04x", bytes[i]);
        } else {
            putchar(bytes[i]);
        }
    }
    putchar('"');
}

static int send_messages(SixcastChannel *channel, const char *label) {
    char text[256];
    snprintf(text, sizeof text, "hello from %s", label);
    uint8_t *large = pattern();
    TRY(sixcast_channel_send(channel, (const uint8_t *)text, strlen(text), &error), "send");
    TRY(sixcast_channel_send(channel, NULL, 0, &error), "send");
    TRY(sixcast_channel_send(channel, large, PATTERN_SIZE, &error), "send");
    TRY(sixcast_channel_flush(channel, &error), "flush");
    free(large);
    return 0;
}

static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int receive_messages(SixcastChannel *channel, long count, double timeout_seconds) {
    uint8_t *expected = pattern();
    TRY(sixcast_channel_join(channel, &error), "join");
    printf("READY\n");
    fflush(stdout);
    int64_t deadline = now_ms() + (int64_t)(timeout_seconds * 1000);
    int status = 0;
    for (long received = 0; received < count; received++) {
        int64_t remaining = deadline - now_ms();
        SixcastMessage *message = NULL;
        SixcastError *error = NULL;
        SixcastStatus result =
            sixcast_channel_recv(channel, remaining > 0 ? remaining : 0, &message, &error);
        if (result == SIXCAST_STATUS_TIMEOUT) {
            sixcast_error_free(error);
            status = TIMED_OUT;
            break;
        }
        if (result != SIXCAST_STATUS_OK) {
            fail("recv", error);
        }
        size_t size = message->payload_len;
        printf("{\"size\": %zu, \"text\": ", size);
        if (size <= 64) {
            print_json_string(message->payload, size);
        } else {
            printf("null");
        }
        int pattern_ok = size == PATTERN_SIZE && memcmp(message->payload, expected, size) == 0;
        printf(", \"pattern_ok\": %s, \"seq\": %llu, \"sender\": \"%s\"}\n",
               pattern_ok ? "true" : "false", (unsigned long long)message->seq, message->sender);
        fflush(stdout);
        sixcast_message_free(message);
    }
    free(expected);
    return status;
}

int main(int argc, char **argv) {
    int sending = argc == 4 && strcmp(argv[1], "send") == 0;
    int receiving = argc == 5 && strcmp(argv[1], "recv") == 0;
    if (!sending && !receiving) {
        fprintf(stderr, "usage: agent send <channel> <label> | recv <channel> <count> <timeout-seconds>\n");
        return 64;
    }
    SixcastContext *context = NULL;
    SixcastChannel *channel = NULL;
    TRY(sixcast_context_open(NULL, &context, &error), "open a context");
    TRY(sixcast_context_channel(context, argv[2], &channel, &error), "open the channel");
    int status = sending ? send_messages(channel, argv[3])
                         : receive_messages(channel, strtol(argv[3], NULL, 10), atof(argv[4]));
    sixcast_context_close(context);
    sixcast_channel_free(channel);
    sixcast_context_free(context);
    return status;
}
