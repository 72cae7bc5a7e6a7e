"""The Kedro pipeline wiring for data_cleaning."""

from core.pipelines.data_cleaning import nodes


def create_pipeline(**kwargs):
    # Imported here so the nodes can be used and tested without Kedro installed.
    from kedro.pipeline import node, pipeline

    return pipeline(
        [
            node(
                nodes.clean,
                inputs=["raw_customers", "params:data_cleaning"],
                outputs="clean_customers",
                name="clean_customers",
            ),
        ],
        namespace="data_cleaning",
    )
