<?php
// kiosk test sample: a legitimate bot webhook that replies to /start
$update = json_decode(file_get_contents("php://input"), true);
$chat = $update['message']['chat']['id'];
file_get_contents("https://api.telegram.org/botTOKEN/sendMessage?chat_id=$chat&text=Hello");
?>
