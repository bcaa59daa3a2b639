/* The arithmetic floor of the seed workload: a stateful LSTM(H) over windows of LOOK_BACK steps of one
 * feature, a Dense(1) head, MSE and Keras's Adam, batch 1, trained in plain C on one core (float32).
 * Each step does what the `scan` engine's step does: the forward pass over one window from the carried
 * state, backpropagation through that window (the state enters without a gradient), and an Adam update.
 *
 * usage: lstm_floor SERIES_FILE WINDOWS EPOCHS   (SERIES_FILE: one value per line)
 * prints: samples_per_sec=<median epoch> loss=<last epoch's mean loss>
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define H 4
#define LOOK_BACK 3
#define G (4 * H)
/* parameters, flat: kernel (1 x 4H), recurrent (H x 4H), bias (4H), dense (H), dense bias (1) */
#define N_PARAMS (G + H * G + G + H + 1)

static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SERIES_FILE WINDOWS EPOCHS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]), epochs = atoi(argv[3]);
    float *s = malloc(sizeof(float) * (n + LOOK_BACK));
    FILE *f = fopen(argv[1], "r");
    if (!f) return 2;
    for (int i = 0; i < n + LOOK_BACK; i++)
        if (fscanf(f, "%f", &s[i]) != 1) return 2;
    fclose(f);

    float p[N_PARAMS], m[N_PARAMS] = {0}, v[N_PARAMS] = {0}, g[N_PARAMS];
    srand(0);
    for (int i = 0; i < N_PARAMS; i++) p[i] = ((float)rand() / RAND_MAX - 0.5f) * 0.5f;
    float *W = p, *U = p + G, *b = p + G + H * G, *D = p + 2 * G + H * G, *d0 = p + 2 * G + H * G + H;
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
    double *rates = malloc(sizeof(double) * epochs);
    float loss_sum = 0, b1t = 1.0f, b2t = 1.0f; /* b1 and b2 to the power of the step */
    for (int e = 0; e < epochs; e++) {
        float h[H] = {0}, c[H] = {0};
        loss_sum = 0;
        double t0 = now();
        for (int k = 0; k < n; k++) {
            /* forward over the window, keeping what backpropagation needs */
            float hs[LOOK_BACK + 1][H], cs[LOOK_BACK + 1][H], gates[LOOK_BACK][G], tc[LOOK_BACK][H];
            memcpy(hs[0], h, sizeof h);
            memcpy(cs[0], c, sizeof c);
            for (int t = 0; t < LOOK_BACK; t++) {
                float x = s[k + t];
                for (int j = 0; j < G; j++) {
                    float z = x * W[j] + b[j];
                    for (int q = 0; q < H; q++) z += hs[t][q] * U[q * G + j];
                    gates[t][j] = (j >= 2 * H && j < 3 * H) ? tanhf(z) : sigm(z);
                }
                for (int q = 0; q < H; q++) {
                    float i_ = gates[t][q], f_ = gates[t][H + q], g_ = gates[t][2 * H + q], o_ = gates[t][3 * H + q];
                    cs[t + 1][q] = f_ * cs[t][q] + i_ * g_;
                    tc[t][q] = tanhf(cs[t + 1][q]);
                    hs[t + 1][q] = o_ * tc[t][q];
                }
            }
            float y = *d0;
            for (int q = 0; q < H; q++) y += hs[LOOK_BACK][q] * D[q];
            float err = y - s[k + LOOK_BACK];
            loss_sum += err * err;
            /* backward */
            memset(g, 0, sizeof g);
            float dy = 2.0f * err, dh[H], dc[H] = {0};
            g[N_PARAMS - 1] = dy;
            for (int q = 0; q < H; q++) {
                g[2 * G + H * G + q] = hs[LOOK_BACK][q] * dy;
                dh[q] = D[q] * dy;
            }
            for (int t = LOOK_BACK - 1; t >= 0; t--) {
                float dz[G];
                for (int q = 0; q < H; q++) {
                    float i_ = gates[t][q], f_ = gates[t][H + q], g_ = gates[t][2 * H + q], o_ = gates[t][3 * H + q];
                    float dct = dc[q] + dh[q] * o_ * (1.0f - tc[t][q] * tc[t][q]);
                    dz[q] = dct * g_ * i_ * (1.0f - i_);
                    dz[H + q] = dct * cs[t][q] * f_ * (1.0f - f_);
                    dz[2 * H + q] = dct * i_ * (1.0f - g_ * g_);
                    dz[3 * H + q] = dh[q] * tc[t][q] * o_ * (1.0f - o_);
                    dc[q] = dct * f_;
                }
                float x = s[k + t];
                for (int j = 0; j < G; j++) {
                    g[j] += x * dz[j];
                    g[G + H * G + j] += dz[j];
                }
                for (int q = 0; q < H; q++) {
                    float acc = 0;
                    for (int j = 0; j < G; j++) {
                        g[G + q * G + j] += hs[t][q] * dz[j];
                        acc += U[q * G + j] * dz[j];
                    }
                    dh[q] = acc;
                }
            }
            /* Keras's Adam */
            b1t *= b1;
            b2t *= b2;
            float alpha = lr * sqrtf(1.0f - b2t) / (1.0f - b1t);
            for (int i = 0; i < N_PARAMS; i++) {
                m[i] += (g[i] - m[i]) * (1.0f - b1);
                v[i] += (g[i] * g[i] - v[i]) * (1.0f - b2);
                p[i] -= alpha * m[i] / (sqrtf(v[i]) + eps);
            }
            /* the state after the window starts the next one, without a gradient path back */
            memcpy(h, hs[LOOK_BACK], sizeof h);
            memcpy(c, cs[LOOK_BACK], sizeof c);
        }
        rates[e] = n / (now() - t0);
    }
    qsort(rates, epochs, sizeof(double), cmp);
    printf("samples_per_sec=%.1f loss=%.6f\n", rates[epochs / 2], loss_sum / n);
    return 0;
}
