"""TensorFlow: the reference backend (Keras `fit` here is what the tutorial ran)."""

from __future__ import annotations

from bench.backends.base import Backend, register_backend


@register_backend
class TensorFlow(Backend):
    name = "tensorflow"
    distributions = ("tensorflow", "tensorflow-cpu")

    def configure(self, threads: int | None) -> None:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notices for each new model are expected here
        tf.config.experimental.enable_op_determinism()
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)

    def gpu_names(self) -> list[str]:
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
