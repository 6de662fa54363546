"""What spark-submit and its properties file set wins over the job's config."""

from __future__ import annotations

from moviegraph import sparkargs
from moviegraph.submit import submit_args


def test_options_conf_and_properties_file(tmp_path):
    props = tmp_path / "my.conf"
    props.write_text("# comment\nspark.master  yarn\nspark.executor.memory=4g\n"
                     "spark.driver.memory: 2g\n")
    got = sparkargs.submitted_properties(
        ["--properties-file", str(props), "--conf", "spark.executor.memory=8g",
         "--deploy-mode=cluster", "--jars", "a.jar,b.jar"])
    assert got == {"spark.master": "yarn", "spark.executor.memory": "8g",
                   "spark.driver.memory": "2g", "spark.submit.deployMode": "cluster",
                   "spark.jars": "a.jar,b.jar"}


def test_spark_defaults_master_is_not_overridden_by_the_wrapper(tmp_path, monkeypatch):
    (tmp_path / "spark-defaults.conf").write_text("spark.master k8s://https://api:6443\n"
                                                  "spark.driver.memory 6g\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    master, args = submit_args(["walks"], [])
    assert master == "k8s://https://api:6443"
    assert "--master" not in args and "--driver-memory" not in args
    assert "--jars" in args  # nobody set the jars: the job's cached Delta jars go


def test_wrapper_fills_what_nobody_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))  # no spark-defaults.conf there
    master, args = submit_args(["walks", "--set", "spark.master=local[3]"],
                               ["--driver-memory", "1g"])
    assert master == "local[3]"
    assert args[args.index("--master") + 1] == "local[3]"
    assert "--driver-memory" not in args
    master, _ = submit_args(["walks"], ["--master", "spark://h:7077"])
    assert master == "spark://h:7077"


def test_cluster_deploy_mode_keeps_the_platform_logging(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    _, args = submit_args(["walks"], ["--master", "yarn", "--deploy-mode", "cluster"])
    assert not any("log4j2" in a for a in args)
    _, args = submit_args(["walks"], ["--conf", "spark.driver.extraJavaOptions=-Xss4m"])
    opts = args[args.index("--conf") + 1]
    assert opts.startswith("spark.driver.extraJavaOptions=-Xss4m -Dlog4j2.configurationFile=")
