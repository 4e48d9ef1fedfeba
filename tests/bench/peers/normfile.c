/* One file over NORM (NRL's NACK-Oriented Reliable Multicast, libnorm), for
 * tests/bench/files-beside-peers: a sender that enqueues one file object and exits once every
 * receiver named with -A has acknowledged it (a watermark, as UFTP's closed group), and a
 * receiver that writes the file into a cache directory and moves it to OUT/data.bin.
 *
 *   cc -O2 -o normfile tests/bench/peers/normfile.c -lnorm
 *   normfile send -i eth0 -n 1 -A 2,3,4 [-a ff15::1:2] [-p 6003] [-r 95e6] [-P 0]
 *            [-s 1420] [-k 64] [-m 16] [-b MiB] [-t seconds] FILE
 *   normfile recv -i eth0 -n 2 -c CACHEDIR -o OUTDIR [-a ff15::1:2] [-p 6003] [-b MiB]
 *            [-l linger] [-t seconds]
 *
 * The receiver stays up to LINGER seconds (5) after the file is whole, so that it answers the
 * sender's acknowledgement requests, and leaves sooner when NORM reports the sender inactive.
 * Buffer space (-b) is 64 MiB by default, the timeout (-t) 600 s. Exit status 0 when the sender
 * has every acknowledgement / the receiver has the whole file, 1 on failure or timeout, 2 on
 * bad usage. */
#define _POSIX_C_SOURCE 200809L

/* Debian's normApi.h (1.5.9) declares two functions with C++ syntax (a reference parameter, a
 * default argument): hide those two declarations behind macros so that the header is C. */
#define NormGetRxBindAddress(...) NormGetRxBindAddress_cxx_only(void)
#define NormStreamGetVacancy(...) NormStreamGetVacancy_cxx_only(void)
#include <normApi.h>
#undef NormGetRxBindAddress
#undef NormStreamGetVacancy

#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "normfile";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "%s: %s\n", prog, what);
    exit(1);
}

static void usage(void) {
    fprintf(stderr,
            "usage: normfile send -i IFACE -n NODEID -A ID[,ID...] [-a ADDR] [-p PORT] [-r BPS]\n"
            "                     [-P AUTOPARITY] [-s SEGMENT] [-k DATA] [-m PARITY] [-b MIB]\n"
            "                     [-t SECONDS] FILE\n"
            "       normfile recv -i IFACE -n NODEID -c CACHEDIR -o OUTDIR [-a ADDR] [-p PORT]\n"
            "                     [-b MIB] [-l LINGER] [-t SECONDS]\n");
    exit(2);
}

static unsigned long number(const char *text, const char *what) {
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 0);
    if (errno || end == text || *end) {
        fprintf(stderr, "%s: %s: not a number: %s\n", prog, what, text);
        exit(2);
    }
    return value;
}

static double real(const char *text, const char *what) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || *end || value < 0) {
        fprintf(stderr, "%s: %s: not a number: %s\n", prog, what, text);
        exit(2);
    }
    return value;
}

/* Waits for the next NORM event until `deadline` (monotonic seconds); 0 on timeout. */
static int next_event(NormInstanceHandle instance, NormEvent *event, double deadline) {
    int fd = NormGetDescriptor(instance);
    for (;;) {
        double left = deadline - now();
        if (left <= 0) return 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (ready < 0 && errno != EINTR) die("poll on the NORM descriptor failed");
        if (ready > 0) {
            if (!NormGetNextEvent(instance, event, true)) die("NormGetNextEvent failed");
            return 1;
        }
    }
}

struct options {
    const char *addr, *iface, *acking, *cache, *out;
    unsigned long port, node, segment, data, parity, autoparity, buffer_mib;
    double rate, timeout, linger;
};

static NormSessionHandle open_session(NormInstanceHandle *instance, const struct options *o) {
    if (if_nametoindex(o->iface) == 0) {
        fprintf(stderr, "%s: no interface %s\n", prog, o->iface);
        exit(1);
    }
    *instance = NormCreateInstance(false);
    if (*instance == NORM_INSTANCE_INVALID) die("NormCreateInstance failed");
    NormSessionHandle session =
        NormCreateSession(*instance, o->addr, (UINT16)o->port, (NormNodeId)o->node);
    if (session == NORM_SESSION_INVALID) die("NormCreateSession failed (address, port or node id)");
    if (!NormSetMulticastInterface(session, o->iface)) {
        fprintf(stderr, "%s: NormSetMulticastInterface(%s) failed\n", prog, o->iface);
        exit(1);
    }
    if (!NormSetTTL(session, 1)) die("NormSetTTL failed");
    if (!NormSetLoopback(session, false)) die("NormSetLoopback failed");
    /* A LAN: start from a 1 ms round-trip estimate instead of NORM's 0.5 s default, so that the
     * first flushes and acknowledgement requests are not paced for a WAN. Probing refines it. */
    NormSetGrttEstimate(session, 0.001);
    NormSetGrttMax(session, 0.1);
    return session;
}

static int send_file(const struct options *o, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return 1;
    }
    NormInstanceHandle instance;
    NormSessionHandle session = open_session(&instance, o);
    NormSetTxRate(session, o->rate);

    unsigned nodes[1024], count = 0;
    char *list = strdup(o->acking), *save = NULL;
    for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        if (count == sizeof nodes / sizeof nodes[0]) die("too many acking nodes");
        nodes[count] = (unsigned)number(id, "acking node id");
        if (!NormAddAckingNode(session, nodes[count])) {
            fprintf(stderr, "%s: NormAddAckingNode(%u) failed\n", prog, nodes[count]);
            return 1;
        }
        count++;
    }
    free(list);
    if (count == 0) die("no acking nodes (-A)");

    srand((unsigned)(now() * 1e6) ^ (unsigned)getpid());
    if (!NormStartSender(session, (NormSessionId)rand(), (UINT32)(o->buffer_mib << 20),
                         (UINT16)o->segment, (UINT16)o->data, (UINT16)o->parity, 0))
        die("NormStartSender failed (buffer space, segment size or block parameters)");
    if (o->autoparity > o->parity) die("auto parity larger than the parity per block (-m)");
    NormSetAutoParity(session, (unsigned char)o->autoparity);
    /* The sockets exist once the sender has started. The kernel caps the sizes at
     * net.core.wmem_max / rmem_max without failing. */
    if (!NormSetTxSocketBuffer(session, 4u << 20)) die("NormSetTxSocketBuffer failed");
    if (!NormSetRxSocketBuffer(session, 4u << 20)) die("NormSetRxSocketBuffer failed");

    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    NormObjectHandle object = NormFileEnqueue(session, path, name, (unsigned)strlen(name));
    if (object == NORM_OBJECT_INVALID) die("NormFileEnqueue failed");
    if (!NormSetWatermark(session, object, true)) die("NormSetWatermark failed");

    double deadline = now() + o->timeout, noted = 0;
    int rounds = 0, status = 1;
    NormEvent event;
    for (;;) {
        if (!next_event(instance, &event, deadline)) {
            fprintf(stderr, "%s: timed out after %.0f s; no acknowledgement from node(s)", prog,
                    o->timeout);
            for (unsigned i = 0; i < count; i++)
                if (NormGetAckingStatus(session, nodes[i]) != NORM_ACK_SUCCESS)
                    fprintf(stderr, " %u", nodes[i]);
            fprintf(stderr, "\n");
            break;
        }
        if (event.type == NORM_TX_OBJECT_PURGED && event.object == object) {
            fprintf(stderr, "%s: the file object was purged before every node acknowledged\n",
                    prog);
            break;
        }
        if (event.type != NORM_TX_WATERMARK_COMPLETED) continue;
        rounds++;
        if (NormGetAckingStatus(session, NORM_NODE_ANY) == NORM_ACK_SUCCESS) {
            status = 0;
            break;
        }
        unsigned acked = 0;
        for (unsigned i = 0; i < count; i++)
            if (NormGetAckingStatus(session, nodes[i]) == NORM_ACK_SUCCESS) acked++;
        if (acked == count) {
            status = 0;
            break;
        }
        if (now() - noted >= 10) { /* a round takes a few round trips: say so now and then */
            fprintf(stderr, "%s: watermark round %d: %u of %u nodes acknowledged; asking again\n",
                    prog, rounds, acked, count);
            noted = now();
        }
        /* Ask again the nodes that have not answered (repairs go on meanwhile); the overall
         * timeout bounds the retries. */
        if (!NormResetWatermark(session)) die("NormResetWatermark failed");
    }
    NormStopSender(session);
    NormDestroySession(session);
    NormDestroyInstance(instance);
    return status;
}

static int receive_file(const struct options *o) {
    if (!o->cache || !o->out) usage();
    char cache[4096], target[4096];
    snprintf(cache, sizeof cache, "%s/", o->cache);
    snprintf(target, sizeof target, "%s/data.bin", o->out);
    NormInstanceHandle instance;
    NormSessionHandle session = open_session(&instance, o);
    if (!NormSetCacheDirectory(instance, cache)) {
        fprintf(stderr, "%s: NormSetCacheDirectory(%s) failed\n", prog, cache);
        return 1;
    }
    NormSetDefaultSyncPolicy(session, NORM_SYNC_ALL);
    if (!NormStartReceiver(session, (UINT32)(o->buffer_mib << 20)))
        die("NormStartReceiver failed (buffer space?)");
    /* The socket exists once the receiver has started; the kernel caps the size at
     * net.core.rmem_max without failing. */
    if (!NormSetRxSocketBuffer(session, 8u << 20)) die("NormSetRxSocketBuffer failed");

    double deadline = now() + o->timeout;
    int done = 0, status = 1;
    NormEvent event;
    for (;;) {
        if (!next_event(instance, &event, deadline)) {
            if (done) status = 0; /* lingered long enough to answer the sender's flushes */
            else fprintf(stderr, "%s: timed out after %.0f s without the whole file\n", prog,
                         o->timeout);
            break;
        }
        switch (event.type) {
        case NORM_RX_OBJECT_COMPLETED:
            if (done || NormObjectGetType(event.object) != NORM_OBJECT_FILE) break;
            if (!NormFileRename(event.object, target)) {
                fprintf(stderr, "%s: NormFileRename to %s failed\n", prog, target);
                goto out;
            }
            done = 1;
            /* Stay a while: the sender's watermark needs this node's acknowledgement, which
             * NORM sends in answer to the sender's next flush. Leave when the sender falls
             * silent or after the linger time. */
            deadline = now() + o->linger;
            break;
        case NORM_RX_OBJECT_ABORTED:
            if (!done) {
                fprintf(stderr, "%s: the sender aborted the file object\n", prog);
                goto out;
            }
            break;
        case NORM_REMOTE_SENDER_INACTIVE:
            if (done) {
                status = 0;
                goto out;
            }
            break;
        default:
            break;
        }
    }
out:
    NormStopReceiver(session);
    NormDestroySession(session);
    NormDestroyInstance(instance);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    int sending = strcmp(argv[1], "send") == 0;
    if (!sending && strcmp(argv[1], "recv") != 0) usage();
    prog = sending ? "normfile send" : "normfile recv";
    struct options o = {.addr = "ff15::1:2", .port = 6003, .iface = NULL, .node = 0,
                        .segment = 1420, .data = 64, .parity = 16, .autoparity = 0,
                        .buffer_mib = 64, .rate = 95e6, .timeout = 600, .linger = 5};
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "a:p:i:n:A:c:o:r:P:s:k:m:b:t:l:")) != -1) {
        switch (opt) {
        case 'a': o.addr = optarg; break;
        case 'p': o.port = number(optarg, "port"); break;
        case 'i': o.iface = optarg; break;
        case 'n': o.node = number(optarg, "node id"); break;
        case 'A': o.acking = optarg; break;
        case 'c': o.cache = optarg; break;
        case 'o': o.out = optarg; break;
        case 'r': o.rate = real(optarg, "rate"); break;
        case 'P': o.autoparity = number(optarg, "auto parity"); break;
        case 's': o.segment = number(optarg, "segment size"); break;
        case 'k': o.data = number(optarg, "data segments per block"); break;
        case 'm': o.parity = number(optarg, "parity segments per block"); break;
        case 'b': o.buffer_mib = number(optarg, "buffer space"); break;
        case 't': o.timeout = real(optarg, "timeout"); break;
        case 'l': o.linger = real(optarg, "linger"); break;
        default: usage();
        }
    }
    if (!o.iface || o.node == 0 || o.node >= 0xffffffffUL || o.port == 0 || o.port > 65535)
        usage();
    if (sending) {
        if (optind != argc - 1 || !o.acking) usage();
        return send_file(&o, argv[optind]);
    }
    if (optind != argc) usage();
    return receive_file(&o);
}
