/* A passive-check agent in C, Nagios-style, for hosts where Node is not wanted: every
 * --interval seconds it runs its checks and sends each result on the "monitoring" channel in the
 * format of README.md, so the same collector shows it beside the Node agents.
 *
 *   cc agent.c $(pkg-config --cflags --libs sixcast) -o agent
 *   ./agent --host web1 --interval 10 --check 'disk=/usr/lib/nagios/plugins/check_disk -w 10%'
 *
 * Each --check SERVICE=COMMAND runs a Nagios plugin through /bin/sh: its exit code gives the
 * state (0 OK, 1 WARNING, 2 CRITICAL, anything else UNKNOWN) and its first output line the text.
 * Without a --check it sends one result, "alive", always OK. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sixcast.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHECKS 32
#define MAX_OUTPUT 512

static const char *const STATES[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

struct check {
    const char *service;
    const char *command;
};

static volatile sig_atomic_t stopping = 0;

static void stop(int signal_number) {
    (void)signal_number;
    stopping = 1;
}

/* Runs a plugin: its state index, and its first output line in `output`. */
static int run_plugin(const char *command, char *output, size_t size) {
    snprintf(output, size, "(no output)");
    FILE *plugin = popen(command, "r");
    if (!plugin) {
        snprintf(output, size, "cannot run the plugin");
        return 3;
    }
    char line[MAX_OUTPUT];
    if (fgets(line, sizeof line, plugin)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0]) {
            snprintf(output, size, "%s", line);
        }
        while (fgets(line, sizeof line, plugin)) {
            /* The rest of the output is long text Nagios keeps apart; read it so the plugin ends. */
        }
    }
    int status = pclose(plugin);
    int code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : 3;
    return code <= 2 ? code : 3;
}

/* Appends `text` to `out` as a JSON string; false when it does not fit. */
static int append_json_string(char *out, size_t size, size_t *used, const char *text) {
    for (const char *c = "\""; *c; c++) {
        if (*used + 1 >= size) return 0;
        out[(*used)++] = *c;
    }
    for (; *text; text++) {
        unsigned char byte = (unsigned char)*text;
        char escaped[8];
        if (byte == '"' || byte == '\\') {
            snprintf(escaped, sizeof escaped, "\\%c", byte);
        } else if (byte < 0x20) {
            snprintf(escaped, sizeof escaped, "\\u%04x", byte);
        } else {
            escaped[0] = (char)byte;
            escaped[1] = 0;
        }
        size_t length = strlen(escaped);
        if (*used + length + 1 >= size) return 0;
        memcpy(out + *used, escaped, length);
        *used += length;
    }
    if (*used + 2 >= size) return 0;
    out[(*used)++] = '"';
    out[*used] = 0;
    return 1;
}

/* One result as the README's JSON object. */
static int format_result(char *out, size_t size, const char *host, const char *service,
                         int state, const char *output) {
    size_t used = (size_t)snprintf(out, size, "{\"host\": ");
    if (!append_json_string(out, size, &used, host)) return 0;
    used += (size_t)snprintf(out + used, size - used, ", \"service\": ");
    if (used >= size || !append_json_string(out, size, &used, service)) return 0;
    used += (size_t)snprintf(out + used, size - used, ", \"state\": \"%s\", \"output\": ",
                             STATES[state]);
    if (used >= size || !append_json_string(out, size, &used, output)) return 0;
    used += (size_t)snprintf(out + used, size - used, ", \"time\": %lld}", (long long)time(NULL));
    return used < size;
}

static int fail(const char *what, SixcastError *error) {
    fprintf(stderr, "agent: %s: %s\n", what, sixcast_error_message(error));
    sixcast_error_free(error);
    return 1;
}

int main(int argc, char **argv) {
    char hostname[256] = "localhost";
    gethostname(hostname, sizeof hostname);
    const char *host = hostname, *channel_name = "monitoring";
    double interval = 10;
    struct check checks[MAX_CHECKS];
    int check_count = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[i + 1];
        } else if (strcmp(argv[i], "--interval") == 0) {
            interval = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--channel") == 0) {
            channel_name = argv[i + 1];
        } else if (strcmp(argv[i], "--check") == 0 && check_count < MAX_CHECKS &&
                   strchr(argv[i + 1], '=') > argv[i + 1]) {
            char *separator = strchr(argv[i + 1], '=');
            *separator = 0;
            checks[check_count++] = (struct check){argv[i + 1], separator + 1};
        } else {
            fprintf(stderr, "agent: bad option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc % 2 == 0 || interval <= 0) {
        fprintf(stderr, "usage: agent [--host NAME] [--interval SECONDS] [--check SERVICE=COMMAND]...\n");
        return 2;
    }
    struct sigaction on_stop = {.sa_handler = stop};
    sigaction(SIGINT, &on_stop, NULL);
    sigaction(SIGTERM, &on_stop, NULL);

    SixcastContext *context = NULL;
    SixcastChannel *channel = NULL;
    SixcastError *error = NULL;
    if (sixcast_context_open(NULL, &context, &error) != SIXCAST_STATUS_OK) {
        return fail("cannot open a context", error);
    }
    if (sixcast_context_channel(context, channel_name, &channel, &error) != SIXCAST_STATUS_OK) {
        sixcast_context_free(context);
        return fail("cannot open the channel", error);
    }
    printf("agent %s: sending to %s every %g s\n", host, channel_name, interval);
    fflush(stdout);
    int status = 0;
    while (!stopping && status == 0) {
        char summary[1024] = "";
        for (int i = 0; i < (check_count ? check_count : 1); i++) {
            const char *service = check_count ? checks[i].service : "alive";
            char output[MAX_OUTPUT] = "up", message[2048];
            int state = check_count ? run_plugin(checks[i].command, output, sizeof output) : 0;
            if (!format_result(message, sizeof message, host, service, state, output)) {
                continue; /* a result too long to send is left out, not cut short */
            }
            if (sixcast_channel_send(channel, (const uint8_t *)message, strlen(message), &error) !=
                SIXCAST_STATUS_OK) {
                status = fail("cannot send", error);
                break;
            }
            size_t used = strlen(summary);
            snprintf(summary + used, sizeof summary - used, "%s%s %s", i ? ", " : "", service,
                     STATES[state]);
        }
        if (status == 0 && sixcast_channel_flush(channel, &error) != SIXCAST_STATUS_OK) {
            status = fail("cannot send", error);
        }
        printf("agent %s: %s\n", host, summary);
        fflush(stdout);
        struct timespec pause = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
        nanosleep(&pause, NULL); /* a signal cuts the pause short */
    }
    sixcast_context_close(context);
    sixcast_channel_free(channel);
    sixcast_context_free(context);
    return status;
}
