#!/usr/bin/env bash
# A local Spark cluster from the pyspark wheel: a standalone master, one worker and a Spark Connect
# server, all on 127.0.0.1, the session time zone pinned to UTC, one embedded Derby metastore owned by
# the Connect server. Every file (warehouse, metastore, pids, logs) lives under one directory.
#
#   scripts/spark_local.sh start     # prints the sc:// URL once the Connect server accepts clients
#   scripts/spark_local.sh stop      # stops the three processes by the pids recorded at start
#   scripts/spark_local.sh status
#
# Environment (defaults in brackets):
#   CONSENTGATE_SPARK_DIR           state directory [.consentgate/spark/ in the repository, git-ignored]
#   CONSENTGATE_PYTHON              a Python with pyspark installed [.venv/bin/python]
#   CONSENTGATE_SPARK_MASTER_PORT   [7077]   CONSENTGATE_SPARK_MASTER_UI_PORT  [18080]
#   CONSENTGATE_SPARK_WORKER_UI_PORT [18081] CONSENTGATE_SPARK_CONNECT_PORT    [15002]
#   CONSENTGATE_SPARK_WORKER_CORES  [2]      CONSENTGATE_SPARK_WORKER_MEMORY   [2g]
#   CONSENTGATE_SPARK_DRIVER_MEMORY [1g]     CONSENTGATE_SPARK_START_TIMEOUT   [180] seconds
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${CONSENTGATE_SPARK_DIR:-$ROOT/.consentgate/spark}"
PY="${CONSENTGATE_PYTHON:-$ROOT/.venv/bin/python}"
MASTER_PORT="${CONSENTGATE_SPARK_MASTER_PORT:-7077}"
MASTER_UI_PORT="${CONSENTGATE_SPARK_MASTER_UI_PORT:-18080}"
WORKER_UI_PORT="${CONSENTGATE_SPARK_WORKER_UI_PORT:-18081}"
CONNECT_PORT="${CONSENTGATE_SPARK_CONNECT_PORT:-15002}"
WORKER_CORES="${CONSENTGATE_SPARK_WORKER_CORES:-2}"
WORKER_MEMORY="${CONSENTGATE_SPARK_WORKER_MEMORY:-2g}"
DRIVER_MEMORY="${CONSENTGATE_SPARK_DRIVER_MEMORY:-1g}"
TIMEOUT="${CONSENTGATE_SPARK_START_TIMEOUT:-180}"

MASTER=org.apache.spark.deploy.master.Master
WORKER=org.apache.spark.deploy.worker.Worker
CONNECT=org.apache.spark.sql.connect.service.SparkConnectServer

die() { echo "spark_local.sh: $*" >&2; exit 1; }

spark_env() {
    SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)" ||
        die "no pyspark in $PY; install it with: $PY -m pip install 'consentgate[spark]'"
    mkdir -p "$DIR"/{pids,logs,work,warehouse,conf,derby}
    DIR="$(cd "$DIR" && pwd)"
    export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_IDENT_STRING=consentgate
    export SPARK_PID_DIR="$DIR/pids" SPARK_LOG_DIR="$DIR/logs" SPARK_WORKER_DIR="$DIR/work"
    export SPARK_CONF_DIR="$DIR/conf"   # empty: no spark-defaults.conf from elsewhere
    export TZ=UTC
}

pid_file() { echo "$DIR/pids/spark-consentgate-$1-1.pid"; }

alive() {  # alive CLASS: the recorded process of CLASS is running
    local f; f="$(pid_file "$1")"
    [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT CLASS
    local deadline=$((SECONDS + TIMEOUT))
    until port_open "$1"; do
        alive "$2" || die "$2 exited during start-up; see $DIR/logs"
        ((SECONDS < deadline)) || die "port $1 not open after ${TIMEOUT}s; see $DIR/logs"
        sleep 0.3
    done
}

start() {
    spark_env
    alive "$CONNECT" && die "already running (sc://127.0.0.1:$CONNECT_PORT); stop it first"
    local daemon="$SPARK_HOME/sbin/spark-daemon.sh" url="spark://127.0.0.1:$MASTER_PORT"
    cd "$DIR"  # derby.log and spark-warehouse fallbacks land here
    bash "$daemon" start "$MASTER" 1 --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT" >/dev/null
    wait_port "$MASTER_PORT" "$MASTER"
    bash "$daemon" start "$WORKER" 1 "$url" --host 127.0.0.1 --cores "$WORKER_CORES" \
        --memory "$WORKER_MEMORY" --webui-port "$WORKER_UI_PORT" --work-dir "$DIR/work" >/dev/null
    bash "$SPARK_HOME/sbin/start-connect-server.sh" --master "$url" --driver-memory "$DRIVER_MEMORY" \
        --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
        --conf spark.ui.enabled=false \
        --conf spark.connect.grpc.binding.address=127.0.0.1 --conf "spark.connect.grpc.binding.port=$CONNECT_PORT" \
        --conf spark.sql.catalogImplementation=hive --conf spark.sql.session.timeZone=UTC \
        --conf "spark.sql.warehouse.dir=$DIR/warehouse" \
        --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$DIR/derby/metastore_db;create=true" \
        --conf "spark.driver.extraJavaOptions=-Dderby.system.home=$DIR/derby -Duser.timezone=UTC" \
        --conf "spark.executor.extraJavaOptions=-Duser.timezone=UTC" \
        --conf spark.executor.memory=1g --conf spark.sql.shuffle.partitions=4 >/dev/null
    wait_port "$CONNECT_PORT" "$CONNECT"
    echo "sc://127.0.0.1:$CONNECT_PORT"
}

stop() {
    spark_env
    local cls f pid
    for cls in "$CONNECT" "$WORKER" "$MASTER"; do
        f="$(pid_file "$cls")"
        [[ -f $f ]] || continue
        pid="$(cat "$f")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}

status() {
    spark_env
    local cls
    for cls in "$MASTER" "$WORKER" "$CONNECT"; do
        if alive "$cls"; then echo "${cls##*.}: running (pid $(cat "$(pid_file "$cls")"))"; else echo "${cls##*.}: stopped"; fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
