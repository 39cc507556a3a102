from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("hello", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False):
    BashOperator(task_id="say_hello", bash_command="echo hello")
